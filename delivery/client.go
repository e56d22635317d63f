package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/chartscan/chartscan/deliver"
	"github.com/chartscan/chartscan/mllp"
	"github.com/chartscan/chartscan/storage"
)

// Unavailable is an EHR that did not answer, or answered that it cannot take anything
// now (a connection refused or cut, a timeout, HTTP 5xx, 429, 401/403): the delivery is
// tried again later, with backoff, and nothing is rejected. Its text names the target
// and what happened, never a value of the document.
type Unavailable struct {
	What string
	Err  error
}

func (u *Unavailable) Error() string {
	if u.Err != nil {
		return u.What + ": " + u.Err.Error()
	}
	return u.What
}

func (u *Unavailable) Unwrap() error { return u.Err }

// IsUnavailable reports whether err is an Unavailable.
func IsUnavailable(err error) bool {
	var u *Unavailable
	return errors.As(err, &u)
}

// Result is a target's answer to one message: its state (storage.TargetAcknowledged,
// TargetAccepted, TargetRejected), its code (HL7 MSA-1, the FHIR HTTP status) and, for
// a rejection, its reason as the receiver gave it (shown to the records clerk, never
// logged: a receiver may quote the patient).
type Result struct {
	State  string
	Code   string
	Reason string
}

// maxReason bounds a receiver's reason as it is kept.
const maxReason = 500

// cleanReason makes a receiver's text safe to store and show: control characters to
// spaces, at most maxReason bytes (on a rune boundary).
func cleanReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// FHIRClient posts transaction Bundles to a FHIR R4 server.
type FHIRClient struct {
	// Base is the server's base URL (CHARTSCAN_FHIR_URL): the Bundle is POSTed to it.
	Base string
	HTTP *http.Client
	// Token returns the bearer token to send (a static one, or ClientCredentials.Token);
	// nil sends none. Invalidate, when set, drops a token the server refused.
	Token      func(ctx context.Context) (string, error)
	Invalidate func()
}

// Transaction posts bundle and reads the server's answer: 2xx with every entry's
// response 2xx is acknowledged; 4xx (but 401, 403, 408, 429) rejected, with the
// OperationOutcome's text as the reason; anything else, or no answer, Unavailable.
func (c *FHIRClient) Transaction(ctx context.Context, bundle []byte) (Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Base, "/"), bytes.NewReader(bundle))
	if err != nil {
		return Result{}, fmt.Errorf("FHIR request: %w", err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	if c.Token != nil {
		tok, err := c.Token(ctx)
		if err != nil {
			return Result{}, &Unavailable{What: "FHIR server: no access token", Err: err}
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Result{}, &Unavailable{What: "FHIR server unreachable", Err: stripURL(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return Result{}, &Unavailable{What: "FHIR server: answer cut short", Err: err}
	}
	code := strconv.Itoa(resp.StatusCode)
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		if c.Invalidate != nil {
			c.Invalidate()
		}
		return Result{}, &Unavailable{What: "FHIR server refused chartscan's credentials (HTTP " + code + ")"}
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return Result{}, &Unavailable{What: "FHIR server unavailable (HTTP " + code + ")"}
	case s >= 400:
		return Result{State: storage.TargetRejected, Code: code, Reason: cleanReason(outcomeText(body, "HTTP "+code))}, nil
	case s < 200 || s >= 300:
		return Result{}, &Unavailable{What: "FHIR server answered HTTP " + code}
	}
	var tr struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Response struct {
				Status  string          `json:"status"`
				Outcome json.RawMessage `json:"outcome"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.ResourceType != "Bundle" {
		return Result{}, &Unavailable{What: "FHIR server: the answer is not a Bundle"}
	}
	for _, e := range tr.Entry {
		if !strings.HasPrefix(strings.TrimSpace(e.Response.Status), "2") {
			return Result{State: storage.TargetRejected, Code: code,
				Reason: cleanReason(outcomeText(e.Response.Outcome, "entry "+e.Response.Status))}, nil
		}
	}
	return Result{State: storage.TargetAcknowledged, Code: code}, nil
}

// stripURL drops the URL from an *url.Error: the base URL is configuration, but a
// query could carry an identifier.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// outcomeText is what an OperationOutcome says: each issue's details.text or
// diagnostics, "; "-separated; def when there is none.
func outcomeText(body []byte, def string) string {
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity    string `json:"severity"`
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
			Details     struct {
				Text string `json:"text"`
			} `json:"details"`
		} `json:"issue"`
	}
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return def
	}
	var parts []string
	for _, i := range oo.Issue {
		t := i.Details.Text
		if t == "" {
			t = i.Diagnostics
		}
		if t == "" {
			t = i.Code
		}
		if t != "" && !contains(parts, t) {
			parts = append(parts, t)
		}
	}
	if len(parts) == 0 {
		return def
	}
	return strings.Join(parts, "; ")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// StaticToken returns a Token func for a fixed bearer token (CHARTSCAN_FHIR_TOKEN).
func StaticToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

// ClientCredentials gets bearer tokens by OAuth 2.0's client credentials grant (RFC
// 6749 4.4; SMART Backend Services' servers take it with a client secret): the client id
// and secret by HTTP Basic, the token kept until a minute before it expires.
type ClientCredentials struct {
	TokenURL, ClientID, ClientSecret, Scope string
	HTTP                                    *http.Client

	mu  sync.Mutex
	tok string
	exp time.Time
}

// Token returns a token, asking the token endpoint for one when it has none.
func (cc *ClientCredentials) Token(ctx context.Context) (string, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.tok != "" && time.Now().Before(cc.exp) {
		return cc.tok, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if cc.Scope != "" {
		form.Set("scope", cc.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cc.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(cc.ClientID), url.QueryEscape(cc.ClientSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	hc := cc.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("token endpoint: %w", stripURL(err))
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint answered HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: no access_token in its answer")
	}
	if t.TokenType != "" && !strings.EqualFold(t.TokenType, "bearer") {
		return "", fmt.Errorf("token endpoint: token type %q, want bearer", t.TokenType)
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	if life <= 0 {
		life = 5 * time.Minute
	}
	cc.tok, cc.exp = t.AccessToken, time.Now().Add(life-min(time.Minute, life/2))
	return cc.tok, nil
}

// Invalidate drops the token kept, so the next Token asks for a new one.
func (cc *ClientCredentials) Invalidate() {
	cc.mu.Lock()
	cc.tok = ""
	cc.mu.Unlock()
}

// HL7Sender sends MDM messages over MLLP to an interface engine and reads each
// acknowledgement.
type HL7Sender struct {
	Addr string      // host:port (CHARTSCAN_HL7_ADDR)
	TLS  *tls.Config // nil: plain TCP
	// Timeout bounds connecting and waiting for each acknowledgement (30 s when 0).
	Timeout time.Duration
}

// Session is one MLLP connection for the messages of one delivery.
type Session struct {
	s *HL7Sender
	c *mllp.Client
}

// Open connects; the caller closes the session.
func (s *HL7Sender) Open(ctx context.Context) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	c, err := mllp.Dial(ctx, s.Addr, s.TLS)
	if err != nil {
		return nil, &Unavailable{What: "HL7 interface engine unreachable", Err: err}
	}
	return &Session{s: s, c: c}, nil
}

func (s *HL7Sender) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 30 * time.Second
}

// Close closes the connection.
func (ss *Session) Close() error { return ss.c.Close() }

// Send sends msg, whose MSH-10 is controlID, and reads its acknowledgement: AA
// acknowledged, CA accepted, AE, AR, CE, CR rejected with the receiver's text. No
// answer, an answer that is not an acknowledgement of this message: Unavailable (the
// message is sent again, with the same control id, which a receiver's duplicate check
// knows).
func (ss *Session) Send(ctx context.Context, msg []byte, controlID string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, ss.s.timeout())
	defer cancel()
	raw, err := ss.c.Send(ctx, msg)
	if err != nil {
		return Result{}, &Unavailable{What: "HL7 interface engine: no acknowledgement", Err: err}
	}
	ack, err := deliver.ReadACK(raw)
	if err != nil {
		return Result{}, &Unavailable{What: "HL7 interface engine: unreadable acknowledgement", Err: err}
	}
	if ack.ControlID != controlID {
		return Result{}, &Unavailable{What: "HL7 interface engine acknowledged another message (MSA-2)"}
	}
	switch ack.Code {
	case deliver.AckAccept:
		return Result{State: storage.TargetAcknowledged, Code: ack.Code}, nil
	case deliver.AckCommitAccept:
		return Result{State: storage.TargetAccepted, Code: ack.Code}, nil
	}
	reason := ack.Text
	if reason == "" {
		reason = "refused (" + ack.Code + ")"
	}
	return Result{State: storage.TargetRejected, Code: ack.Code, Reason: cleanReason(reason)}, nil
}
