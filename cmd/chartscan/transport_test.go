package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate valid from notBefore to notAfter and its key, and
// returns their files.
func selfSigned(t *testing.T, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestServerTLSConfig: serve's TLS is 1.2 at least with forward-secret AEAD suites only;
// a certificate not valid today, a key of another certificate or a missing file stops
// serve with a sentence naming the setting; one expiring within two weeks is warned of.
func TestServerTLSConfig(t *testing.T) {
	now := time.Now()
	cert, key := selfSigned(t, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	cfg, warn, err := serverTLS(config{TLSCert: cert, TLSKey: key}, now)
	if err != nil || warn != "" {
		t.Fatalf("a good certificate: %v, warning %q", err, warn)
	}
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 {
		t.Errorf("MinVersion %x, %d certificates", cfg.MinVersion, len(cfg.Certificates))
	}
	for _, id := range cfg.CipherSuites {
		if name := tls.CipherSuiteName(id); !strings.HasPrefix(name, "TLS_ECDHE_") || strings.Contains(name, "CBC") {
			t.Errorf("suite %s offered: not forward-secret AEAD", name)
		}
	}
	soon, soonKey := selfSigned(t, now.Add(-time.Hour), now.Add(3*24*time.Hour))
	if _, warn, err := serverTLS(config{TLSCert: soon, TLSKey: soonKey}, now); err != nil || !strings.Contains(warn, "renew") {
		t.Errorf("a certificate expiring in 3 days: %v, warning %q", err, warn)
	}
	old, oldKey := selfSigned(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	_, otherKey := selfSigned(t, now.Add(-time.Hour), now.Add(time.Hour))
	for name, c := range map[string]config{
		"expired":       {TLSCert: old, TLSKey: oldKey},
		"another's key": {TLSCert: cert, TLSKey: otherKey},
		"missing file":  {TLSCert: cert + ".gone", TLSKey: key},
	} {
		if _, _, err := serverTLS(c, now); err == nil || !strings.Contains(err.Error(), "CHARTSCAN_TLS_") {
			t.Errorf("%s: %v, want an error naming the setting", name, err)
		}
	}
}

// TestReadCAFile: a CA file that is not PEM says so, naming the setting.
func TestReadCAFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(p, []byte("not a certificate"), 0o644)
	if _, err := readCAFile("CHARTSCAN_REDIS_CA", p); err == nil || !strings.Contains(err.Error(), "CHARTSCAN_REDIS_CA") {
		t.Errorf("junk CA file: %v", err)
	}
	if _, err := readCAFile("CHARTSCAN_MINIO_CA", p+".gone"); err == nil || !strings.Contains(err.Error(), "CHARTSCAN_MINIO_CA") {
		t.Errorf("missing CA file: %v", err)
	}
}
