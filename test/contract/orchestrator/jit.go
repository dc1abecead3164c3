package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

// realJITConfig builds a JIT config shaped like GitHub's `encoded_jit_config`: base64 of a JSON
// document whose entries are the runner's `.runner`, `.credentials` and `.credentials_rsaparams`
// files, base64-encoded, the last holding a fresh 2048-bit RSA key. About 4,100 characters: too
// big for SSM's Standard tier, which is why the orchestrator packs it.
func realJITConfig(runnerName string) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	b64 := func(n *big.Int) string { return base64.StdEncoding.EncodeToString(n.Bytes()) }
	key.Precompute()
	rsaParams, _ := json.Marshal(map[string]string{
		"d":        b64(key.D),
		"dp":       b64(key.Precomputed.Dp),
		"dq":       b64(key.Precomputed.Dq),
		"exponent": b64(big.NewInt(int64(key.E))),
		"inverseQ": b64(key.Precomputed.Qinv),
		"modulus":  b64(key.N),
		"p":        b64(key.Primes[0]),
		"q":        b64(key.Primes[1]),
	})
	runner, _ := json.Marshal(map[string]interface{}{
		"agentId":       4242,
		"agentName":     runnerName,
		"poolId":        1,
		"poolName":      "Default",
		"ephemeral":     true,
		"serverUrl":     "https://pipelinesghubeus8.actions.githubusercontent.com/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/",
		"gitHubUrl":     "https://github.com/acme/app",
		"workFolder":    "_work",
		"useV2Flow":     true,
		"serverUrlV2":   "https://broker.actions.githubusercontent.com/",
		"disableUpdate": false,
	})
	credentials, _ := json.Marshal(map[string]interface{}{
		"scheme": "OAuth",
		"data": map[string]string{
			"clientId":                "3c4e5f6a-7b8c-9d0e-1f2a-3b4c5d6e7f80",
			"authorizationUrl":        "https://vstoken.actions.githubusercontent.com/_apis/oauth2/token/0123abcd-4567-89ef-0123-456789abcdef",
			"requireFipsCryptography": "True",
		},
	})
	doc, err := json.Marshal(map[string]string{
		".runner":                base64.StdEncoding.EncodeToString(runner),
		".credentials":           base64.StdEncoding.EncodeToString(credentials),
		".credentials_rsaparams": base64.StdEncoding.EncodeToString(rsaParams),
	})
	if err != nil {
		return "", fmt.Errorf("jit config: %w", err)
	}
	return base64.StdEncoding.EncodeToString(doc), nil
}
