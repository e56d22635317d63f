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
// enables it: running it twice leaves the same state, as a demo set-up script needs.
func (db *DB) UpsertUser(ctx context.Context, name, role, passwordHash string) (u User, created bool, err error) {
	u, err = scanUser(db.pool.QueryRow(ctx, `
		INSERT INTO users AS u (name, role, password_hash) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash,
			disabled = false, updated_at = now()
		RETURNING `+userColumns+`, (xmax = 0)`, name, role, passwordHash), &created)
	if err != nil {
		return u, false, fmt.Errorf("upsert user: %w", err)
	}
	return u, created, nil
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

// SetPassword replaces a user's password hash and ends its sessions, so a changed
// password shuts out whoever knew the old one.
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
	if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return tx.Commit(ctx)
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

// Session returns the user of a live session and its CSRF token. An unknown or expired
// session, or a disabled user, is ErrNotFound.
func (db *DB) Session(ctx context.Context, tokenHash string) (User, string, error) {
	var csrf string
	u, err := scanUser(db.pool.QueryRow(ctx, `
		SELECT `+userColumns+`, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > now() AND NOT u.disabled`, tokenHash), &csrf)
	if err != nil {
		return u, "", fmt.Errorf("session: %w", err)
	}
	return u, csrf, nil
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, tokenHash string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// CreateToken stores an API token for a user under the token's SHA-256.
func (db *DB) CreateToken(ctx context.Context, userName, tokenHash, label string) error {
	tag, err := db.pool.Exec(ctx, `INSERT INTO api_tokens (token_hash, user_id, label) SELECT $2, id, $3 FROM users WHERE name = $1`,
		userName, tokenHash, label)
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return chartscan.Errorf(chartscan.ENotFound, "no user named %q", userName)
	}
	return nil
}

// TokenUser returns the enabled user an API token belongs to, and notes its use.
func (db *DB) TokenUser(ctx context.Context, tokenHash string) (User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `
		UPDATE api_tokens t SET last_used_at = now() FROM users u
		WHERE t.token_hash = $1 AND u.id = t.user_id AND NOT u.disabled
		RETURNING `+userColumns, tokenHash))
	if err != nil {
		return u, fmt.Errorf("api token: %w", err)
	}
	return u, nil
}
