package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies reads CHARTSCAN_TRUSTED_PROXIES: comma-separated addresses
// (10.0.0.5, ::1) and networks (10.0.0.0/24). An address is a network of one. Empty
// means no proxy is trusted: every request's client is the peer that connected.
func ParseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not a network; want e.g. 10.0.0.0/24", f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address; want e.g. 10.0.0.5 or 10.0.0.0/24 (names are not resolved)", f)
		}
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// trusts reports whether a is one of the trusted proxies.
func trusts(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one address of X-Forwarded-For, which some proxies write with a port
// ("10.0.0.1:5000", "[::1]:5000").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// clientIP is the address a request came from, as the sign-in limiter and the audit log
// key it, and peer is the address that connected (the same unless a proxy forwarded it).
//
// X-Forwarded-For is anyone's to write, so it is read only when the peer is a trusted
// proxy (Config.TrustedProxies), and then from the right: each proxy appends the address
// it saw, so the right end was written by the trusted peer and everything left of the
// first untrusted address came from the client. That address is the client. Were the
// header read from the left, or from any peer, one client could take a fresh sign-in
// budget per request by naming a new address each time, and write what it likes into the
// audit log. A hop that is not an address stops the walk at the last trusted one: a
// trusted proxy never writes that, so it is the client's, and so is all left of it.
func (s *Server) clientIP(r *http.Request) (client, peer string) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, ok := parseHop(host)
	if !ok || !trusts(s.cfg.TrustedProxies, a) {
		return host, host
	}
	peer = a.String()
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	last := a
	for i := len(hops) - 1; i >= 0; i-- {
		h, ok := parseHop(hops[i])
		if !ok {
			break
		}
		if !trusts(s.cfg.TrustedProxies, h) {
			return h.String(), peer
		}
		last = h
	}
	// Every hop was a trusted proxy, or the walk stopped at junk: the farthest trusted
	// one seen is the best anyone can say.
	return last.String(), peer
}

// viaTLS reports whether the browser reached chartscan over HTTPS: on this connection,
// or at a trusted proxy that says so (X-Forwarded-Proto), which is what decides whether
// Strict-Transport-Security may be sent.
func (s *Server) viaTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, ok := parseHop(host)
	if !ok || !trusts(s.cfg.TrustedProxies, a) {
		return false
	}
	// The proxy nearest the client is the one the browser spoke to: the first value.
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}

// hstsHeader tells a browser that has reached chartscan over HTTPS to use nothing else
// for a year, so a later link or typed address in http:// cannot be intercepted before
// a redirect. Sent only on HTTPS (browsers ignore it on HTTP anyway), and without
// includeSubDomains: chartscan cannot know what else runs under its parent domain.
const hstsHeader = "max-age=31536000"
