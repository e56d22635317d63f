package mllp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReaderFraming(t *testing.T) {
	frame := func(s string) string { return "\x0b" + s + "\x1c\x0d" }
	tests := []struct {
		name string
		in   string
		max  int
		want []string
		err  error // after the messages
	}{
		{"one", frame("MSH|a"), 0, []string{"MSH|a"}, io.EOF},
		{"two back to back", frame("A") + frame("B"), 0, []string{"A", "B"}, io.EOF},
		{"noise between frames", "\r\n" + frame("A") + "\n\n" + frame("B") + "\r\n", 0, []string{"A", "B"}, io.EOF},
		{"no carriage return after the end byte", "\x0bA\x1c\x0bB\x1c\x0d", 0, []string{"A", "B"}, io.EOF},
		{"segments keep their carriage returns", frame("MSH|1\rPID|2\r"), 0, []string{"MSH|1\rPID|2\r"}, io.EOF},
		{"abandoned start", "\x0bhalf\x0bwhole\x1c\x0d", 0, []string{"whole"}, io.EOF},
		{"ends inside a message", frame("A") + "\x0bpartial", 0, []string{"A"}, ErrFraming},
		{"too large, then goes on", frame(strings.Repeat("x", 100)) + frame("ok"), 10, nil, ErrTooLarge},
		{"empty stream", "", 0, nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), tt.max)
			var got []string
			var err error
			for {
				var m []byte
				m, err = r.ReadMessage()
				if err != nil {
					break
				}
				got = append(got, string(m))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v, want %v", err, tt.err)
			}
			if errors.Is(err, ErrTooLarge) {
				// The oversized message is discarded whole: the next one reads.
				if m, err := r.ReadMessage(); err != nil || string(m) != "ok" {
					t.Errorf("after a too large message: %q, %v; want \"ok\"", m, err)
				}
			}
		})
	}
}

// echo acknowledges each message with "ACK:" and the message, recording the order.
type echo struct {
	mu   sync.Mutex
	got  []string
	slow time.Duration
}

func (e *echo) ServeMLLP(_ context.Context, _ *ConnInfo, msg []byte) []byte {
	time.Sleep(e.slow)
	e.mu.Lock()
	e.got = append(e.got, string(msg))
	e.mu.Unlock()
	return append([]byte("ACK:"), msg...)
}

func serve(t *testing.T, s *Server) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-done:
			case <-time.After(10 * time.Second):
				serr = errors.New("Serve did not return")
			}
		})
		return serr
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

func TestServerAcknowledgesInOrder(t *testing.T) {
	h := &echo{}
	addr, _ := serve(t, &Server{Handler: h})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var want []string
	for i := range 20 {
		msg := fmt.Sprintf("MSH|%d\rPID|%d\r", i, i)
		want = append(want, msg)
		ack, err := c.Send(ctx, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if string(ack) != "ACK:"+msg {
			t.Fatalf("ack %q for %q", ack, msg)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if diff := cmp.Diff(want, h.got); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
}

// TestServerStopFinishesTheMessageInHand stops the server while a message is being
// handled: its acknowledgement still goes out, and Serve returns.
func TestServerStopFinishesTheMessageInHand(t *testing.T) {
	h := &echo{slow: 300 * time.Millisecond}
	addr, stop := serve(t, &Server{Handler: h})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan string, 1)
	go func() {
		ack, err := c.Send(ctx, []byte("MSH|slow"))
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(ack)
	}()
	time.Sleep(100 * time.Millisecond) // the message is in the handler
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if ack := <-got; ack != "ACK:MSH|slow" {
		t.Errorf("acknowledgement of the message in hand: %q", ack)
	}
	if _, err := c.Send(ctx, []byte("MSH|after")); err == nil {
		t.Error("a message after the stop was acknowledged")
	}
}

func TestServerTooLargeAndGoesOn(t *testing.T) {
	addr, _ := serve(t, &Server{Handler: &echo{}, MaxMessage: 64, TooLarge: func() []byte { return []byte("AR") }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ack, err := c.Send(ctx, bytes.Repeat([]byte("x"), 1000)); err != nil || string(ack) != "AR" {
		t.Errorf("too large: %q, %v", ack, err)
	}
	if ack, err := c.Send(ctx, []byte("small")); err != nil || string(ack) != "ACK:small" {
		t.Errorf("after too large: %q, %v", ack, err)
	}
}

func TestServerOverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	var sawTLS bool
	var mu sync.Mutex
	h := HandlerFunc(func(_ context.Context, info *ConnInfo, msg []byte) []byte {
		mu.Lock()
		sawTLS = info.TLS != nil
		mu.Unlock()
		return msg
	})
	addr, _ := serve(t, &Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ack, err := c.Send(ctx, []byte("MSH|tls")); err != nil || string(ack) != "MSH|tls" {
		t.Fatalf("over TLS: %q, %v", ack, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawTLS {
		t.Error("the handler was not told the connection is TLS")
	}
	// A plain-TCP sender gets nothing from a TLS listener.
	plain, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if ack, err := plain.Send(sctx, []byte("MSH|plain")); err == nil {
		t.Errorf("plain TCP to a TLS listener acknowledged: %q", ack)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
