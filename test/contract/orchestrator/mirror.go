// Package main mirrors the parts of the runs-fleet orchestrator (github.com/Shatille/runs-fleet)
// that the agent meets on the wire, with the orchestrator's own types and rules, so that the
// agent's tests write configs as the orchestrator does and decode messages as it does.
//
// Copied, trimmed to the standard library, from (paths in that repository):
//   - pkg/secrets/store.go       RunnerConfig
//   - pkg/secrets/credential.go  marshalConfigHalf, storedCredential, packCredential, compressJITConfig
//   - pkg/secrets/ssm.go         Put's layout and order (credential first, then config)
//   - pkg/termination/handler.go Message, processMessage's decode and validation, jobResult
//
// Keep it in step with the orchestrator when it changes: this file is the contract.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// RunnerConfig is pkg/secrets/store.go's RunnerConfig, field for field and tag for tag.
type RunnerConfig struct {
	Org                 string   `json:"org"`
	Repo                string   `json:"repo,omitempty"`
	RunID               string   `json:"run_id"`
	RegistrationToken   string   `json:"jit_token"`
	JITConfig           string   `json:"jit_config,omitempty"`
	Labels              []string `json:"labels"`
	RunnerGroup         string   `json:"runner_group,omitempty"`
	RunnerName          string   `json:"runner_name,omitempty"`
	JobID               string   `json:"job_id,omitempty"`
	CacheToken          string   `json:"cache_token,omitempty"`
	CacheURL            string   `json:"cache_url,omitempty"`
	TerminationQueueURL string   `json:"termination_queue_url,omitempty"`
	IsOrg               bool     `json:"is_org"`
	CreatedAt           string   `json:"created_at,omitempty"`
	BuildkitCacheBucket string   `json:"buildkit_cache_bucket,omitempty"`
	BuildkitCacheRegion string   `json:"buildkit_cache_region,omitempty"`
	BuildkitCachePrefix string   `json:"buildkit_cache_prefix,omitempty"`
	RunnerLogsBucket    string   `json:"runner_logs_bucket,omitempty"`
	RunnerLogsPrefix    string   `json:"runner_logs_prefix,omitempty"`
}

// marshalConfigHalf renders the plaintext half (pkg/secrets/credential.go).
func marshalConfigHalf(config *RunnerConfig) ([]byte, error) {
	type configAlias RunnerConfig
	encoded, err := json.Marshal(&struct {
		*configAlias
		RegistrationToken *string `json:"jit_token,omitempty"`
		JITConfig         *string `json:"jit_config,omitempty"`
	}{configAlias: (*configAlias)(config)})
	if err != nil {
		return nil, fmt.Errorf("failed to marshal runner config: %w", err)
	}
	return encoded, nil
}

type storedCredential struct {
	JITConfig         string `json:"jit_config,omitempty"`
	RegistrationToken string `json:"jit_token,omitempty"`
	Compressed        bool   `json:"compressed,omitempty"`
}

// packCredential renders the credential half (pkg/secrets/credential.go).
func packCredential(config *RunnerConfig) (string, error) {
	stored := storedCredential{RegistrationToken: config.RegistrationToken}
	if config.JITConfig != "" {
		packed, compressed, err := compressJITConfig(config.JITConfig)
		if err != nil {
			return "", err
		}
		stored.JITConfig = packed
		stored.Compressed = compressed
	}
	encoded, err := json.Marshal(&stored)
	if err != nil {
		return "", fmt.Errorf("failed to marshal credential: %w", err)
	}
	return string(encoded), nil
}

func compressJITConfig(jitConfig string) (string, bool, error) {
	raw, err := base64.StdEncoding.DecodeString(jitConfig)
	if err != nil {
		return jitConfig, false, nil
	}
	var buf bytes.Buffer
	writer, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", false, fmt.Errorf("failed to create gzip writer: %w", err)
	}
	if _, err := writer.Write(raw); err != nil {
		return "", false, fmt.Errorf("failed to compress credential: %w", err)
	}
	if err := writer.Close(); err != nil {
		return "", false, fmt.Errorf("failed to finalize compressed credential: %w", err)
	}
	packed := base64.StdEncoding.EncodeToString(buf.Bytes())
	if len(packed) >= len(jitConfig) {
		return jitConfig, false, nil
	}
	return packed, true, nil
}

// Message is pkg/termination/handler.go's Message: what the termination queue's consumer decodes.
type Message struct {
	InstanceID               string    `json:"instance_id"`
	JobID                    string    `json:"job_id"`
	Status                   string    `json:"status"`
	ExitCode                 int       `json:"exit_code"`
	DurationSeconds          int       `json:"duration_seconds"`
	StartedAt                time.Time `json:"started_at"`
	CompletedAt              time.Time `json:"completed_at"`
	Error                    string    `json:"error,omitempty"`
	InterruptedBy            string    `json:"interrupted_by,omitempty"`
	ToolCacheMisses          []string  `json:"tool_cache_misses,omitempty"`
	CacheInterception        string    `json:"cache_interception,omitempty"`
	BuildCacheInterception   string    `json:"build_cache_interception,omitempty"`
	LogUpload                string    `json:"log_upload,omitempty"`
	CacheBytesWritten        int64     `json:"cache_bytes_written,omitempty"`
	BootstrapBootSeconds     float64   `json:"bootstrap_boot_seconds,omitempty"`
	BootstrapConfigSeconds   float64   `json:"bootstrap_config_seconds,omitempty"`
	BootstrapRunnerSeconds   float64   `json:"bootstrap_runner_seconds,omitempty"`
	BootstrapRegisterSeconds float64   `json:"bootstrap_register_seconds,omitempty"`
	BootstrapTotalSeconds    float64   `json:"bootstrap_total_seconds,omitempty"`
}

// validateMessage is the handler's.
func validateMessage(msg *Message) error {
	if msg.InstanceID == "" {
		return fmt.Errorf("instance_id is required")
	}
	if msg.JobID == "" {
		return fmt.Errorf("job_id is required")
	}
	if msg.Status == "" {
		return fmt.Errorf("status is required")
	}
	return nil
}

// jobResult is the handler's operational result for the jobs_completed metric.
func jobResult(status string) string {
	switch status {
	case "success":
		return "served"
	case "timeout":
		return "timeout"
	case "interrupted":
		return "interrupted"
	default:
		return "error"
	}
}

// Verdict is what processMessage does with one body.
type Verdict struct {
	// Accepted: the message had the effect it is meant to have (requeue, confirm, complete).
	Accepted bool `json:"accepted"`
	// Action: requeue (bootstrap_failed), confirm (started), complete (a final status), drop.
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Result: jobResult(status) for a completion (served, timeout, interrupted, error).
	Result  string   `json:"result,omitempty"`
	Message *Message `json:"message,omitempty"`
}

// decide follows processMessage, confirmRunnerStarted and processTermination step by step.
func decide(body string) Verdict {
	if body == "" {
		return Verdict{Action: "drop", Reason: "empty body"}
	}
	var msg Message
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		return Verdict{Action: "drop", Reason: "unparseable: " + err.Error()}
	}
	if msg.Status == "bootstrap_failed" {
		if msg.InstanceID == "" {
			return Verdict{Action: "drop", Reason: "bootstrap_failed message with no instance_id", Message: &msg}
		}
		return Verdict{Accepted: true, Action: "requeue", Message: &msg}
	}
	if msg.Status == "started" {
		if err := validateMessage(&msg); err != nil {
			return Verdict{Action: "drop", Reason: "invalid started message: " + err.Error(), Message: &msg}
		}
		if _, err := strconv.ParseInt(msg.JobID, 10, 64); err != nil {
			return Verdict{Action: "drop", Reason: "started message has invalid job_id", Message: &msg}
		}
		return Verdict{Accepted: true, Action: "confirm", Message: &msg}
	}
	if err := validateMessage(&msg); err != nil {
		return Verdict{Action: "drop", Reason: "invalid termination message: " + err.Error(), Message: &msg}
	}
	if _, err := strconv.ParseInt(msg.JobID, 10, 64); err != nil {
		// processTermination returns an error: the message is redelivered until it expires.
		return Verdict{Action: "redeliver", Reason: fmt.Sprintf("failed to parse job ID %q", msg.JobID), Message: &msg}
	}
	return Verdict{Accepted: true, Action: "complete", Result: jobResult(msg.Status), Message: &msg}
}
