package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
)

func TestSessionsEndWithPasswordChange(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	u, err := db.CreateUser(ctx, "ann", "reviewer", "hash1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, "ann", "clerk", "x"); chartscan.ErrorCode(err) != chartscan.EConflict {
		t.Errorf("a second ann: %v, want a conflict", err)
	}
	if err := db.CreateSession(ctx, u.ID, "tok", "csrf", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, csrf, err := db.Session(ctx, "tok", time.Hour); err != nil || got.Name != "ann" || csrf != "csrf" {
		t.Fatalf("Session = %+v, %q, %v", got, csrf, err)
	}
	if err := db.CreateSession(ctx, u.ID, "old", "c", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Session(ctx, "old", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired session: %v, want not found", err)
	}
	if _, err := db.CreateToken(ctx, "ann", "th0", "before", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPassword(ctx, "ann", "hash2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Session(ctx, "tok", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("session after a password change: %v, want not found", err)
	}
	if _, err := db.TokenUser(ctx, "th0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("token after a password change: %v, want not found", err)
	}
	if _, created, err := db.UpsertUser(ctx, "ann", "admin", "hash3"); err != nil || created {
		t.Errorf("UpsertUser of ann: created %v, %v", created, err)
	}
	if _, h, _ := db.UserByName(ctx, "ann"); h != "hash3" {
		t.Errorf("hash after upsert %q", h)
	}
	if _, err := db.CreateToken(ctx, "ann", "th", "script", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := db.TokenUser(ctx, "th"); err != nil || got.Role != "admin" {
		t.Errorf("TokenUser = %+v, %v", got, err)
	}
	if _, err := db.UpdateUser(ctx, u.ID, "admin", true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TokenUser(ctx, "th"); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of a disabled user: %v, want not found", err)
	}
}

// TestUpsertEndsSessionsAndTokens: resetting an existing user's password with
// `users add --update-existing` shuts out the old sessions and tokens too.
func TestUpsertEndsSessionsAndTokens(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	u, _, err := db.UpsertUser(ctx, "bo", "clerk", "h1")
	if err != nil {
		t.Fatal(err)
	}
	db.CreateSession(ctx, u.ID, "s", "c", time.Now().Add(time.Hour))
	if _, err := db.CreateToken(ctx, "bo", "t", "", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.UpsertUser(ctx, "bo", "clerk", "h2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Session(ctx, "s", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("session after the upsert: %v, want not found", err)
	}
	if _, err := db.TokenUser(ctx, "t"); !errors.Is(err, ErrNotFound) {
		t.Errorf("token after the upsert: %v, want not found", err)
	}
}

// TestSessionIdle: a session unused for longer than the idle period is over, even before
// it expires; use keeps it alive; SessionLive (an event stream asking) is not use.
func TestSessionIdle(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	u, _ := db.CreateUser(ctx, "cy", "clerk", "h")
	if err := db.CreateSession(ctx, u.ID, "s", "c", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	const idle = 1500 * time.Millisecond
	// Used every half second for two idle periods: still live.
	for range 6 {
		time.Sleep(500 * time.Millisecond)
		if _, _, err := db.Session(ctx, "s", idle); err != nil {
			t.Fatalf("a session in use: %v", err)
		}
	}
	// Only asked about, never used: over after the idle period.
	deadline := time.Now().Add(idle + time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		if live, err := db.SessionLive(ctx, "s", idle); err != nil {
			t.Fatal(err)
		} else if !live {
			break
		}
	}
	if live, _ := db.SessionLive(ctx, "s", idle); live {
		t.Fatalf("a session only asked about is live after %v idle", idle+time.Second)
	}
	if _, _, err := db.Session(ctx, "s", idle); !errors.Is(err, ErrNotFound) {
		t.Errorf("an idle session: %v, want not found", err)
	}
	if _, _, err := db.Session(ctx, "s", time.Hour); err != nil {
		t.Errorf("the same session with a longer idle period: %v, want live", err)
	}
}

// TestTokensExpireAndRevoke: a token works until it expires or is revoked; the list
// shows both, and revoking twice changes nothing.
func TestTokensExpireAndRevoke(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	db.CreateUser(ctx, "dee", "reviewer", "h")
	if _, err := db.CreateToken(ctx, "nobody", "x", "", time.Now().Add(time.Hour)); chartscan.ErrorCode(err) != chartscan.ENotFound {
		t.Errorf("a token for an unknown user: %v, want not found", err)
	}
	old, err := db.CreateToken(ctx, "dee", "old", "expired", time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	live, err := db.CreateToken(ctx, "dee", "live", "nightly", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if live.User != "dee" || live.Label != "nightly" || !live.Active(time.Now()) || old.Active(time.Now()) {
		t.Errorf("created tokens: %+v, %+v", live, old)
	}
	if _, err := db.TokenUser(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an expired token: %v, want not found", err)
	}
	if u, err := db.TokenUser(ctx, "live"); err != nil || u.Name != "dee" {
		t.Fatalf("a live token: %+v, %v", u, err)
	}
	r, err := db.RevokeToken(ctx, live.ID)
	if err != nil || r.RevokedAt == nil {
		t.Fatalf("RevokeToken = %+v, %v", r, err)
	}
	if _, err := db.TokenUser(ctx, "live"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a revoked token: %v, want not found", err)
	}
	again, err := db.RevokeToken(ctx, live.ID)
	if err != nil || !again.RevokedAt.Equal(*r.RevokedAt) {
		t.Errorf("revoking again: %+v, %v; want the first revocation kept", again, err)
	}
	if _, err := db.RevokeToken(ctx, 1<<40); chartscan.ErrorCode(err) != chartscan.ENotFound {
		t.Errorf("revoking an unknown token: %v, want not found", err)
	}
	ts, err := db.Tokens(ctx, "dee")
	if err != nil || len(ts) != 2 || ts[0].ID != live.ID || ts[0].LastUsedAt == nil || ts[1].ID != old.ID {
		t.Errorf("Tokens = %+v, %v", ts, err)
	}
	if all, _ := db.Tokens(ctx, ""); len(all) != 2 {
		t.Errorf("every token: %d, want 2", len(all))
	}
}
