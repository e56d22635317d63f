package web

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustProxies(t *testing.T, v string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrustedProxies(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseTrustedProxies(t *testing.T) {
	p := mustProxies(t, " 10.0.0.5, 192.168.1.0/24 ,::1,fd00::/8,")
	want := []string{"10.0.0.5/32", "192.168.1.0/24", "::1/128", "fd00::/8"}
	if len(p) != len(want) {
		t.Fatalf("got %v, want %v", p, want)
	}
	for i := range want {
		if p[i].String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, p[i], want[i])
		}
	}
	if p := mustProxies(t, ""); len(p) != 0 {
		t.Errorf("empty setting trusts %v, want nobody", p)
	}
	for _, bad := range []string{"proxy.example", "10.0.0.0/33", "10.0.0.300", "*"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestClientIPTrustsForwardedForOnlyFromTrustedProxies: X-Forwarded-For from a peer that
// is not a trusted proxy is ignored whatever it says; from a trusted proxy it is read
// right to left, past trusted hops, to the first address that is not one.
func TestClientIPTrustsForwardedForOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name, trusted, remote string
		xff                   []string
		client, peer          string
	}{
		{"no proxy trusted, spoofed header", "", "203.0.113.9:4000", []string{"10.1.1.1"}, "203.0.113.9", "203.0.113.9"},
		{"no proxy trusted, spoofed loopback", "", "203.0.113.9:4000", []string{"127.0.0.1, 10.0.0.1"}, "203.0.113.9", "203.0.113.9"},
		{"untrusted peer among trusted settings", "10.0.0.0/24", "203.0.113.9:4000", []string{"198.51.100.7"}, "203.0.113.9", "203.0.113.9"},
		{"trusted proxy, one hop", "10.0.0.5", "10.0.0.5:4000", []string{"198.51.100.7"}, "198.51.100.7", "10.0.0.5"},
		{"trusted proxy, client prepended a fake", "10.0.0.5", "10.0.0.5:4000", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7", "10.0.0.5"},
		{"two trusted proxies", "10.0.0.0/24", "10.0.0.5:4000", []string{"1.2.3.4, 198.51.100.7, 10.0.0.6"}, "198.51.100.7", "10.0.0.5"},
		{"header over several lines", "10.0.0.0/24", "10.0.0.5:4000", []string{"1.2.3.4", "198.51.100.7", "10.0.0.6"}, "198.51.100.7", "10.0.0.5"},
		{"hop with a port", "10.0.0.5", "10.0.0.5:4000", []string{"198.51.100.7:55000"}, "198.51.100.7", "10.0.0.5"},
		{"IPv6", "::1", "[::1]:4000", []string{"2001:db8::7"}, "2001:db8::7", "::1"},
		{"IPv4-mapped peer", "10.0.0.5", "[::ffff:10.0.0.5]:4000", []string{"198.51.100.7"}, "198.51.100.7", "10.0.0.5"},
		{"trusted proxy, no header", "10.0.0.5", "10.0.0.5:4000", nil, "10.0.0.5", "10.0.0.5"},
		{"junk before the proxy's hop", "10.0.0.0/24", "10.0.0.5:4000", []string{"bogus, 10.0.0.6"}, "10.0.0.6", "10.0.0.5"},
		{"junk after a real client", "10.0.0.5", "10.0.0.5:4000", []string{"bogus, 198.51.100.7"}, "198.51.100.7", "10.0.0.5"},
		{"all hops trusted", "10.0.0.0/24", "10.0.0.5:4000", []string{"10.0.0.7, 10.0.0.6"}, "10.0.0.7", "10.0.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeServer(t, newFakeStore(), Config{TrustedProxies: mustProxies(t, tc.trusted)})
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			client, peer := s.clientIP(r)
			if client != tc.client || peer != tc.peer {
				t.Errorf("client %s via %s, want %s via %s", client, peer, tc.client, tc.peer)
			}
		})
	}
}

// TestSpoofedForwardedForGetsNoFreshSignIns: a client that names a new address in
// X-Forwarded-For with every wrong password still spends its own address's 20; behind a
// trusted proxy, each client behind it has its own 20, and the audit log names both.
func TestSpoofedForwardedForGetsNoFreshSignIns(t *testing.T) {
	f := newFakeStore()
	s := newFakeServer(t, f, Config{})
	(&hashCounter{}).install(s)
	try := func(i int, remote, xff string) int {
		r := loginRequest(fmt.Sprintf("user%02d", i), "wrong-password", remote, "")
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec.Code
	}
	for i := range 20 {
		if st := try(i, "203.0.113.9:4000", fmt.Sprintf("10.9.%d.1", i)); st != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i, st)
		}
	}
	if st := try(20, "203.0.113.9:4000", "10.9.99.1"); st != http.StatusTooManyRequests {
		t.Errorf("21st attempt from one peer under a new forwarded address: %d, want 429", st)
	}
	for _, e := range f.audits {
		if e.Detail["ip"] != "203.0.113.9" || e.Detail["proxy"] != nil {
			t.Fatalf("audit of a direct sign-in: %v, want ip 203.0.113.9 and no proxy", e.Detail)
		}
	}

	f = newFakeStore()
	s = newFakeServer(t, f, Config{TrustedProxies: mustProxies(t, "10.0.0.5")})
	(&hashCounter{}).install(s)
	for i := range 20 {
		if st := try(i, "10.0.0.5:4000", "198.51.100.7"); st != http.StatusUnauthorized {
			t.Fatalf("attempt %d via the proxy: %d, want 401", i, st)
		}
	}
	if st := try(20, "10.0.0.5:4000", "1.2.3.4, 198.51.100.7"); st != http.StatusTooManyRequests {
		t.Errorf("client behind the proxy prepending a fake address: %d, want 429", st)
	}
	if st := try(21, "10.0.0.5:4000", "198.51.100.8"); st != http.StatusUnauthorized {
		t.Errorf("another client behind the same proxy: %d, want 401 (its own budget)", st)
	}
	last := f.audits[len(f.audits)-1]
	if last.Detail["ip"] != "198.51.100.8" || last.Detail["proxy"] != "10.0.0.5" {
		t.Errorf("audit of a proxied sign-in: %v, want ip 198.51.100.8, proxy 10.0.0.5", last.Detail)
	}
}

// TestHSTSOnlyOverHTTPS: Strict-Transport-Security on a TLS connection, and from a
// trusted proxy that says the browser used HTTPS; never when an untrusted peer says so.
func TestHSTSOnlyOverHTTPS(t *testing.T) {
	s := newFakeServer(t, newFakeStore(), Config{TrustedProxies: mustProxies(t, "10.0.0.5")})
	for _, tc := range []struct {
		name, remote, proto string
		tls, want           bool
	}{
		{"plain HTTP", "203.0.113.9:4000", "", false, false},
		{"TLS", "203.0.113.9:4000", "", true, true},
		{"untrusted peer claims https", "203.0.113.9:4000", "https", false, false},
		{"trusted proxy, https", "10.0.0.5:4000", "https", false, true},
		{"trusted proxy, http", "10.0.0.5:4000", "http", false, false},
	} {
		r := httptest.NewRequest("GET", "/login", nil)
		r.RemoteAddr = tc.remote
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		got := rec.Header().Get("Strict-Transport-Security")
		if (got != "") != tc.want || (tc.want && !strings.HasPrefix(got, "max-age=")) {
			t.Errorf("%s: Strict-Transport-Security %q, want it %v", tc.name, got, tc.want)
		}
	}
}
