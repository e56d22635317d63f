package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The PostgreSQL roles chartscan's components connect as in a production deploy, each
// with only the grants it needs. The role that owns the schema (DATABASE_URL's) runs the
// migrations and hands out these grants after each one; a role that does not exist is
// left out, so a developer's single URL works as before.
const (
	RoleServe  = "chartscan_serve"  // the web server: everything, but the audit log only read and appended
	RoleWorker = "chartscan_worker" // OCR hosts: the pipeline's tables; nothing of the audit log, users, sessions or tokens
	RoleCLI    = "chartscan_cli"    // the operator's commands: as serve
)

// Roles lists the component roles.
var Roles = []string{RoleServe, RoleWorker, RoleCLI}

// workerDenied are the tables a worker has no privilege on at all: what a compromised
// OCR host must not read or forge.
var workerDenied = []string{"audit_log", "users", "sessions", "api_tokens", "review_skips"}

// tablePrivileges is the one table of grants: what role may do to table. Tables added
// by later migrations get the default (read and write) for serve, the CLI and workers
// alike; a table workers must not see joins workerDenied.
func tablePrivileges(role, table string) []string {
	switch {
	case role == RoleWorker && slices.Contains(workerDenied, table):
		return nil
	case role == RoleWorker && table == "delivery_events":
		// Workers record delivery events for serve or the CLI to audit: they add them,
		// and cannot change or remove one before it is audited.
		return []string{"SELECT", "INSERT"}
	case table == "audit_log":
		return []string{"SELECT", "INSERT"} // append-only: nobody but the owner updates or deletes
	case table == "goose_db_version":
		return []string{"SELECT"} // each command checks the schema is current; only the owner migrates
	}
	return []string{"SELECT", "INSERT", "UPDATE", "DELETE"}
}

var allTablePrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}

// ErrNotOwner is returned by Migrate when the schema needs migrating and the connection's
// role may not: a component role (RoleServe, …) with the owner's migrations pending.
var ErrNotOwner = errors.New("the schema needs migrating by its owner")

// grantRoles brings the component roles' privileges in line with tablePrivileges, when
// this connection's role owns the schema's tables; it changes nothing that is already
// right (a GRANT rewrites the catalog and invalidates every session's cache).
func (db *DB) grantRoles(ctx context.Context) error {
	var owner bool
	err := db.pool.QueryRow(ctx, `SELECT tableowner = current_user FROM pg_tables
		WHERE schemaname = current_schema() AND tablename = 'audit_log'`).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !owner) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// Concurrent GRANTs on one table fail ("tuple concurrently updated").
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7241002)`); err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	rows, err := tx.Query(ctx, `
		SELECT r.rolname, t.tablename, p.priv, has_table_privilege(r.rolname, quote_ident(t.tablename), p.priv)
		FROM pg_roles r, pg_tables t, unnest($1::text[]) p(priv)
		WHERE r.rolname = ANY($2) AND t.schemaname = current_schema()
		ORDER BY 1, 2`, allTablePrivileges, Roles)
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	type key struct{ role, table string }
	grant, revoke := map[key][]string{}, map[key][]string{}
	var tables []key
	var role, table, priv string
	var has bool
	_, err = pgx.ForEachRow(rows, []any{&role, &table, &priv, &has}, func() error {
		k := key{role, table}
		if !slices.Contains(tables, k) {
			tables = append(tables, k)
		}
		want := slices.Contains(tablePrivileges(role, table), priv)
		switch {
		case want && !has:
			grant[k] = append(grant[k], priv)
		case !want && has:
			revoke[k] = append(revoke[k], priv)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	changed := false
	for _, k := range tables {
		if p := grant[k]; len(p) > 0 {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`GRANT %s ON %s TO %s`, strings.Join(p, ", "), pgx.Identifier{k.table}.Sanitize(), pgx.Identifier{k.role}.Sanitize())); err != nil {
				return fmt.Errorf("grant %s to %s: %w", k.table, k.role, err)
			}
			changed = true
		}
		if p := revoke[k]; len(p) > 0 {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`REVOKE %s ON %s FROM %s`, strings.Join(p, ", "), pgx.Identifier{k.table}.Sanitize(), pgx.Identifier{k.role}.Sanitize())); err != nil {
				return fmt.Errorf("revoke %s from %s: %w", k.table, k.role, err)
			}
			changed = true
		}
	}
	// Sequences: serial ids need USAGE; a worker gets none for the tables it may not touch.
	rows, err = tx.Query(ctx, `
		SELECT r.rolname, c.relname, has_sequence_privilege(r.rolname, quote_ident(c.relname), 'USAGE')
		FROM pg_roles r, pg_class c
		WHERE r.rolname = ANY($1) AND c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace`, Roles)
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	var seq string
	type seqGrant struct {
		role, seq string
		grant     bool
	}
	var seqs []seqGrant
	_, err = pgx.ForEachRow(rows, []any{&role, &seq, &has}, func() error {
		want := !(role == RoleWorker && slices.ContainsFunc(workerDenied, func(t string) bool { return strings.HasPrefix(seq, t+"_") }))
		if want != has {
			seqs = append(seqs, seqGrant{role, seq, want})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	for _, g := range seqs {
		stmt := `GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO %s`
		if !g.grant {
			stmt = `REVOKE ALL ON SEQUENCE %s FROM %s`
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(stmt, pgx.Identifier{g.seq}.Sanitize(), pgx.Identifier{g.role}.Sanitize())); err != nil {
			return fmt.Errorf("grants on %s: %w", g.seq, err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return tx.Commit(ctx)
}

// notOwner turns a migration refused for want of privileges into ErrNotOwner.
func notOwner(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
		return fmt.Errorf("%w: run `chartscan migrate` with the owner's DATABASE_URL first (%s)", ErrNotOwner, pe.Message)
	}
	return err
}
