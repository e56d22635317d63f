package main

import (
	"context"
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

	"github.com/chartscan/chartscan/mllp"
)

// TestADTListenerTLS starts `chartscan adt` with a certificate and requires the
// sender's: a sender with a certificate the CA signed is answered, one without is not.
func TestADTListenerTLS(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvCert, srvKey := issue("localhost", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := issue("engine", x509.ExtKeyUsageClientAuth)
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	s := newStack(t)
	adt := s.startADT("--tls-cert", write("srv.pem", srvCert), "--tls-key", write("srv.key", srvKey), "--tls-client-ca", caFile)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	pair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, adt.addr, &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Send(ctx, []byte("MSH|^~\\&|ENG|NORTH|CS|MAIN|2026||ADT^A04|T1|P|2.5\rPID|1||"+checkDigitMRN(5500001)+"^^^NORTH^MR||TLS^TESS\r"))
	if err != nil || !strings.Contains(string(ack), "\rMSA|AA|T1") {
		t.Fatalf("over TLS with a client certificate: %q, %v", ack, err)
	}
	// Without a client certificate the handshake fails: nothing is acknowledged.
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if anon, err := mllp.Dial(sctx, adt.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"}); err == nil {
		defer anon.Close()
		if ack, err := anon.Send(sctx, []byte("MSH|^~\\&|X|Y|CS|MAIN|2026||ADT^A04|T2|P|2.5\rPID|1||1||ANON\r")); err == nil {
			t.Errorf("a sender without a certificate was answered: %q", ack)
		}
	}
	if n := s.dbCount(`SELECT count(*) FROM patients WHERE family = 'TLS'`); n != 1 {
		t.Errorf("%d patients from the TLS sender, want 1", n)
	}
}
