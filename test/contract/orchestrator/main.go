package main

import (
	"encoding/base64"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

const usage = `orchestrator-mirror: the runs-fleet orchestrator's side of the wire, for the agent's tests.

  orchestrator-mirror render [-layout split|legacy] [-real-jit] < config.json
      print the SSM parameter values the orchestrator would write for this RunnerConfig
  orchestrator-mirror put-config -endpoint URL -region R -instance ID [-prefix P] [-layout split|legacy] [-delay D] [-real-jit] < config.json
      write them to SSM as the orchestrator does (credential first, then config), after D
  orchestrator-mirror decode < bodies.json
      decode each message body (a JSON array of strings) as the termination handler does
`

type rendered struct {
	Layout string `json:"layout"`
	Config string `json:"config"`
	// Credential is null in the legacy layout (one parameter).
	Credential *string `json:"credential"`
	// JITConfig is the original (unpacked) JIT config; its SHA-256 too, for tests that must not print it.
	JITConfig       string `json:"jit_config,omitempty"`
	JITConfigSHA256 string `json:"jit_config_sha256,omitempty"`
	JITConfigChars  int    `json:"jit_config_chars,omitempty"`
	// JITFilesSHA256: what `sha256sum .runner .credentials .credentials_rsaparams` prints for the
	// files the JIT config carries (the runner root's, once decoded), for tests that must not print it.
	JITFilesSHA256 string `json:"jit_files_sha256,omitempty"`
	ConfigChars     int    `json:"config_chars"`
	CredentialChars int    `json:"credential_chars"`
	WrittenAt       string `json:"written_at,omitempty"`
}

func render(config *RunnerConfig, layout string, realJIT bool) (*rendered, error) {
	if realJIT {
		jit, err := realJITConfig(config.RunnerName)
		if err != nil {
			return nil, err
		}
		config.JITConfig = jit
	}
	out := &rendered{Layout: layout, JITConfig: config.JITConfig}
	if config.JITConfig != "" {
		sum := sha256.Sum256([]byte(config.JITConfig))
		out.JITConfigSHA256 = hex.EncodeToString(sum[:])
		out.JITConfigChars = len(config.JITConfig)
		out.JITFilesSHA256 = jitFileDigests(config.JITConfig)
	}
	switch layout {
	case "split":
		half, err := marshalConfigHalf(config)
		if err != nil {
			return nil, err
		}
		credential, err := packCredential(config)
		if err != nil {
			return nil, err
		}
		out.Config, out.Credential = string(half), &credential
		out.CredentialChars = len(credential)
	case "legacy":
		// Older orchestrators: the whole struct, credentials inline, in one parameter.
		whole, err := json.Marshal(config)
		if err != nil {
			return nil, err
		}
		out.Config = string(whole)
	default:
		return nil, fmt.Errorf("unknown layout %q (split or legacy)", layout)
	}
	out.ConfigChars = len(out.Config)
	return out, nil
}

func readConfig() (*RunnerConfig, error) {
	var config RunnerConfig
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &config); err != nil {
		return nil, fmt.Errorf("config on stdin: %w", err)
	}
	return &config, nil
}

// readAndRender is render over the RunnerConfig on stdin, failing the program on an error.
func readAndRender(layout string, realJIT bool) *rendered {
	config, err := readConfig()
	if err != nil {
		fail(err)
	}
	out, err := render(config, layout, realJIT)
	if err != nil {
		fail(err)
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "orchestrator-mirror:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	layout := flags.String("layout", "split", "split or legacy")
	realJIT := flags.Bool("real-jit", false, "mint a real-size JIT config (2048-bit RSA key inside)")
	endpoint := flags.String("endpoint", "", "SSM endpoint (moto)")
	region := flags.String("region", "us-east-1", "region")
	instance := flags.String("instance", "", "instance id")
	prefix := flags.String("prefix", "/runs-fleet/runners", "parameter prefix")
	delay := flags.Duration("delay", 0, "wait this long before writing (the config appears after launch)")
	_ = flags.Parse(os.Args[2:])
	enc := json.NewEncoder(os.Stdout)

	switch os.Args[1] {
	case "render":
		out := readAndRender(*layout, *realJIT)
		_ = enc.Encode(out)
	case "put-config":
		if *endpoint == "" || *instance == "" {
			fail(fmt.Errorf("put-config needs -endpoint and -instance"))
		}
		out := readAndRender(*layout, *realJIT)
		time.Sleep(*delay)
		client := newSSMClient(*endpoint, *region)
		base := fmt.Sprintf("%s/%s", *prefix, *instance)
		// SSMStore.Put: the credential first — a config visible without its credential is a runner that hangs.
		if out.Credential != nil {
			if err := client.putSecureString(base+"/credential", *out.Credential); err != nil {
				fail(err)
			}
		}
		if err := client.putSecureString(base+"/config", out.Config); err != nil {
			fail(err)
		}
		out.WrittenAt = time.Now().UTC().Format(time.RFC3339Nano)
		out.JITConfig = "" // written, not printed
		_ = enc.Encode(out)
	case "decode":
		var bodies []string
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			fail(err)
		}
		if err := json.Unmarshal(data, &bodies); err != nil {
			fail(fmt.Errorf("bodies on stdin (a JSON array of strings): %w", err))
		}
		verdicts := make([]Verdict, 0, len(bodies))
		for _, body := range bodies {
			verdicts = append(verdicts, decide(body))
		}
		_ = enc.Encode(verdicts)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}

// jitFileDigests: `sha256sum .runner .credentials .credentials_rsaparams` of a JIT config's files,
// or "" when it is not base64 of a JSON object of base64 files.
func jitFileDigests(jitConfig string) string {
	raw, err := base64.StdEncoding.DecodeString(jitConfig)
	if err != nil {
		return ""
	}
	var files map[string]string
	if json.Unmarshal(raw, &files) != nil {
		return ""
	}
	out := ""
	for _, name := range []string{".runner", ".credentials", ".credentials_rsaparams"} {
		content, ok := files[name]
		if !ok {
			continue
		}
		bytes, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			return ""
		}
		sum := sha256.Sum256(bytes)
		out += hex.EncodeToString(sum[:]) + "  " + name + "\n"
	}
	return out
}
