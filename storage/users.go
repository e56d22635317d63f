package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chartscan/chartscan"
)

// User is someone who signs in to the web UI or calls the API. Role is "clerk",
// "reviewer" or "admin"; what each may do is the web package's business.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

const userColumns = `u.id, u.name, u.role, u.disabled, u.created_at`

func scanUser(row pgx.Row, extra ...any) (User, error) {
	var u User
	err := row.Scan(append([]any{&u.ID, &u.Name, &u.Role, &u.Disabled, &u.CreatedAt}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, ErrNotFound
	}
	return u, err
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// CreateUser adds a user with an already hashed password. A taken name is EConflict.
func (db *DB) CreateUser(ctx context.Context, name, role, passwordHash string) (User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `
		INSERT INTO users AS u (name, role, password_hash) VALUES ($1, $2, $3)
		RETURNING `+userColumns, name, role, passwordHash))
	if isUniqueViolation(err) {
		return u, chartscan.Errorf(chartscan.EConflict, "a user named %q exists already", name)
	}
	if err != nil {
		return u, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// UpsertUser creates the user, or gives an existing one this role and password and
// enables it: running it twice leaves the same state, as a demo set-up script needs. An
// existing user's new password ends their sessions and revokes their API tokens, as
// SetPassword does.
func (db *DB) UpsertUser(ctx context.Context, name, role, passwordHash string) (u User, created bool, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return u, false, err
	}
	defer tx.Rollback(ctx)
	u, err = scanUser(tx.QueryRow(ctx, `
		INSERT INTO users AS u (name, role, password_hash) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash,
			disabled = false, updated_at = now()
		RETURNING `+userColumns+`, (xmax = 0)`, name, role, passwordHash), &created)
	if err != nil {
		return u, false, fmt.Errorf("upsert user: %w", err)
	}
	if !created {
		if err := endCredentials(ctx, tx, u.ID); err != nil {
			return u, false, fmt.Errorf("upsert user: %w", err)
		}
	}
	return u, created, tx.Commit(ctx)
}

// UserByName returns a user and its password hash. An unknown name is ErrNotFound.
func (db *DB) UserByName(ctx context.Context, name string) (User, string, error) {
	var hash string
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+`, u.password_hash FROM users u WHERE u.name = $1`, name), &hash)
	if err != nil {
		return u, "", fmt.Errorf("user: %w", err)
	}
	return u, hash, nil
}

// Users returns every user by name.
func (db *DB) Users(ctx context.Context) ([]User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users u ORDER BY u.name`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
}

// SetPassword replaces a user's password hash, ends its sessions and revokes its API
// tokens, so a changed password shuts out whoever knew the old one or took a token.
func (db *DB) SetPassword(ctx context.Context, name, passwordHash string) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var id int64
	err = tx.QueryRow(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE name = $1 RETURNING id`, name, passwordHash).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return chartscan.Errorf(chartscan.ENotFound, "no user named %q", name)
	}
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if err := endCredentials(ctx, tx, id); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return tx.Commit(ctx)
}

// endCredentials ends every session of a user and revokes their live API tokens.
func endCredentials(ctx context.Context, tx pgx.Tx, userID int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()`, userID)
	return err
}

// UpdateUser sets a user's role and whether it is disabled; disabling ends its sessions.
func (db *DB) UpdateUser(ctx context.Context, id int64, role string, disabled bool) (User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `
		UPDATE users AS u SET role = $2, disabled = $3, updated_at = now() WHERE id = $1
		RETURNING `+userColumns, id, role, disabled))
	if errors.Is(err, ErrNotFound) {
		return u, chartscan.Errorf(chartscan.ENotFound, "no such user")
	}
	if err != nil {
		return u, fmt.Errorf("update user: %w", err)
	}
	if disabled {
		if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id); err != nil {
			return u, fmt.Errorf("update user: %w", err)
		}
	}
	return u, nil
}

// CreateSession stores a session under the SHA-256 of its cookie token, with the CSRF
// token its forms must carry.
func (db *DB) CreateSession(ctx context.Context, userID int64, tokenHash, csrf string, expires time.Time) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, csrf, expires_at) VALUES ($1, $2, $3, $4)`,
		tokenHash, userID, csrf, expires); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	// Expired sessions are useless; clearing them here keeps the table small without a job.
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns the user of a live session and its CSRF token, and counts the request
// as activity. A session is live until it expires and while it has been idle for less
// than idle. An unknown, expired or idle session, or a disabled user, is ErrNotFound.
func (db *DB) Session(ctx context.Context, tokenHash string, idle time.Duration) (User, string, error) {
	var csrf string
	// Activity is written at most every touchEvery, not on each of the dozen requests
	// (thumbnails) a page makes at once, which would queue on the row's lock.
	touchEvery := min(idle/10, 15*time.Second)
	u, err := scanUser(db.pool.QueryRow(ctx, `
		WITH live AS (
			SELECT s.token_hash, s.user_id, s.csrf, s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => $2)
				AND NOT u.disabled
		), touched AS (
			UPDATE sessions t SET last_seen_at = now() FROM live
			WHERE t.token_hash = live.token_hash AND live.last_seen_at < now() - make_interval(secs => $3)
		)
		SELECT `+userColumns+`, live.csrf FROM live JOIN users u ON u.id = live.user_id`,
		tokenHash, idle.Seconds(), touchEvery.Seconds()), &csrf)
	if err != nil {
		return u, "", fmt.Errorf("session: %w", err)
	}
	return u, csrf, nil
}

// SessionLive reports whether a session is still live (see Session) without counting as
// activity: an open event stream asks it, and must not keep an idle session alive.
func (db *DB) SessionLive(ctx context.Context, tokenHash string, idle time.Duration) (bool, error) {
	var live bool
	err := db.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => $2)
				AND NOT u.disabled)`, tokenHash, idle.Seconds()).Scan(&live)
	if err != nil {
		return false, fmt.Errorf("session: %w", err)
	}
	return live, nil
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, tokenHash string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Token is an API token as an admin sees it; the token itself is never stored.
type Token struct {
	ID         int64      `json:"id"`
	User       string     `json:"user"`
	Label      string     `json:"label"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Active reports whether the token still opens the API at now (its user may be disabled).
func (t Token) Active(now time.Time) bool { return t.RevokedAt == nil && now.Before(t.ExpiresAt) }

const tokenColumns = `t.id, u.name, t.label, t.created_at, t.expires_at, t.last_used_at, t.revoked_at`

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.User, &t.Label, &t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// CreateToken stores an API token for a user under the token's SHA-256, valid until
// expires.
func (db *DB) CreateToken(ctx context.Context, userName, tokenHash, label string, expires time.Time) (Token, error) {
	t, err := scanToken(db.pool.QueryRow(ctx, `
		INSERT INTO api_tokens AS t (token_hash, user_id, label, expires_at)
		SELECT $2, u.id, $3, $4 FROM users u WHERE u.name = $1
		RETURNING t.id, $1::text, t.label, t.created_at, t.expires_at, t.last_used_at, t.revoked_at`,
		userName, tokenHash, label, expires))
	if errors.Is(err, ErrNotFound) {
		return t, chartscan.Errorf(chartscan.ENotFound, "no user named %q", userName)
	}
	if err != nil {
		return t, fmt.Errorf("create token: %w", err)
	}
	return t, nil
}

// Tokens returns the API tokens of a user (every user's for ""), revoked and expired ones
// included, newest first.
func (db *DB) Tokens(ctx context.Context, userName string) ([]Token, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE $1 = '' OR u.name = $1 ORDER BY t.id DESC`, userName)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
}

// RevokeToken ends an API token at once. Revoking a revoked token changes nothing.
func (db *DB) RevokeToken(ctx context.Context, id int64) (Token, error) {
	t, err := scanToken(db.pool.QueryRow(ctx, `
		UPDATE api_tokens t SET revoked_at = coalesce(t.revoked_at, now()) FROM users u
		WHERE t.id = $1 AND u.id = t.user_id RETURNING `+tokenColumns, id))
	if errors.Is(err, ErrNotFound) {
		return t, chartscan.Errorf(chartscan.ENotFound, "no API token %d", id)
	}
	if err != nil {
		return t, fmt.Errorf("revoke token: %w", err)
	}
	return t, nil
}

// TokenUser returns the enabled user an unexpired, unrevoked API token belongs to, and
// notes its use.
func (db *DB) TokenUser(ctx context.Context, tokenHash string) (User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `
		UPDATE api_tokens t SET last_used_at = now() FROM users u
		WHERE t.token_hash = $1 AND u.id = t.user_id AND NOT u.disabled
			AND t.revoked_at IS NULL AND t.expires_at > now()
		RETURNING `+userColumns, tokenHash))
	if err != nil {
		return u, fmt.Errorf("api token: %w", err)
	}
	return u, nil
}
