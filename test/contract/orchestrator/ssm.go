package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// ssmClient speaks the SSM JSON protocol with SigV4, standard library only (no module proxy is
// reachable here, so no AWS SDK for Go): enough to put and delete parameters as the
// orchestrator's SSMStore does.
type ssmClient struct {
	endpoint string
	region   string
	key      string
	secret   string
	http     *http.Client
}

func newSSMClient(endpoint, region string) *ssmClient {
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" {
		key, secret = "testing", "testing"
	}
	return &ssmClient{endpoint: endpoint, region: region, key: key, secret: secret, http: &http.Client{Timeout: 10 * time.Second}}
}

func hmacSHA256(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}

func (c *ssmClient) call(target string, input interface{}) error {
	body, err := json.Marshal(input)
	if err != nil {
		return err
	}
	u, err := url.Parse(c.endpoint)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	amzDate := now.Format("20060102T150405Z")
	day := now.Format("20060102")
	payloadHash := sha256.Sum256(body)
	headers := map[string]string{
		"content-type": "application/x-amz-json-1.1",
		"host":         u.Host,
		"x-amz-date":   amzDate,
		"x-amz-target": "AmazonSSM." + target,
	}
	signed := "content-type;host;x-amz-date;x-amz-target"
	canonical := fmt.Sprintf("POST\n/\n\ncontent-type:%s\nhost:%s\nx-amz-date:%s\nx-amz-target:%s\n\n%s\n%s",
		headers["content-type"], headers["host"], headers["x-amz-date"], headers["x-amz-target"], signed, hex.EncodeToString(payloadHash[:]))
	scope := fmt.Sprintf("%s/%s/ssm/aws4_request", day, c.region)
	canonicalHash := sha256.Sum256([]byte(canonical))
	toSign := fmt.Sprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", amzDate, scope, hex.EncodeToString(canonicalHash[:]))
	k := hmacSHA256([]byte("AWS4"+c.secret), day)
	k = hmacSHA256(k, c.region)
	k = hmacSHA256(k, "ssm")
	k = hmacSHA256(k, "aws4_request")
	signature := hex.EncodeToString(hmacSHA256(k, toSign))

	req, err := http.NewRequest(http.MethodPost, c.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	for name, value := range headers {
		if name != "host" {
			req.Header.Set(name, value)
		}
	}
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", c.key, scope, signed, signature))
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	text, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("SSM %s: HTTP %d: %s", target, res.StatusCode, text)
	}
	return nil
}

// putSecureString is PutParameter as SSMStore.Put calls it: SecureString, Overwrite, Standard tier.
func (c *ssmClient) putSecureString(name, value string) error {
	return c.call("PutParameter", map[string]interface{}{"Name": name, "Value": value, "Type": "SecureString", "Overwrite": true})
}
