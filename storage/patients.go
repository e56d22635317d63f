package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// ImportStats counts what an EMPI import did.
type ImportStats struct {
	Read      int // records read
	Inserted  int // new patients
	Updated   int // patients whose record changed
	Unchanged int // patients already stored exactly so
	Repeated  int // records overridden by a later record with the same MRN in the same file
}

// importChunk is how many patients go to Postgres in one COPY: large enough that COPY's
// speed dominates, small enough to keep memory flat on a million-row file.
const importChunk = 20000

// ImportPatients upserts by MRN the patients that records yields. Each chunk is copied
// into a temporary table with COPY and merged in one statement that touches only rows
// that differ, so importing the same file twice changes nothing.
func (db *DB) ImportPatients(ctx context.Context, records func(yield func(chartscan.Patient) error) error) (ImportStats, error) {
	var st ImportStats
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return st, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `
		CREATE TEMP TABLE IF NOT EXISTS patients_in (LIKE patients INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	cols := []string{"mrn", "family", "given", "birth_date", "sex", "street", "city", "postcode", "state", "phone"}
	rows := make([][]any, 0, importChunk)
	seen := make(map[string]int, importChunk)
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		ins, upd, err := mergePatients(ctx, conn.Conn(), cols, rows)
		if err != nil {
			return err
		}
		st.Inserted += ins
		st.Updated += upd
		st.Unchanged += len(rows) - ins - upd
		rows = rows[:0]
		clear(seen)
		return nil
	}
	err = records(func(p chartscan.Patient) error {
		st.Read++
		var dob *time.Time
		if p.BirthDate != "" {
			t, err := time.Parse(time.DateOnly, p.BirthDate)
			if err != nil {
				return fmt.Errorf("record %d: birth date is not YYYY-MM-DD", st.Read)
			}
			dob = &t
		}
		row := []any{p.MRN, p.Family, p.Given, dob, p.Sex, p.Street, p.City, p.Postcode, p.State, p.Phone}
		// The last record of an MRN wins, within a chunk as across chunks.
		if i, dup := seen[p.MRN]; dup {
			rows[i] = row
			st.Repeated++
			return nil
		}
		seen[p.MRN] = len(rows)
		rows = append(rows, row)
		if len(rows) == importChunk {
			return flush()
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	return st, flush()
}

func mergePatients(ctx context.Context, conn *pgx.Conn, cols []string, rows [][]any) (inserted, updated int, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"patients_in"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return 0, 0, fmt.Errorf("import copy: %w", err)
	}
	// xmax = 0 tells an inserted row from an updated one.
	r, err := tx.Query(ctx, `
		INSERT INTO patients AS p (mrn, family, given, birth_date, sex, street, city, postcode, state, phone)
		SELECT mrn, family, given, birth_date, sex, street, city, postcode, state, phone FROM patients_in
		ON CONFLICT (mrn) DO UPDATE SET
			family = EXCLUDED.family, given = EXCLUDED.given, birth_date = EXCLUDED.birth_date,
			sex = EXCLUDED.sex, street = EXCLUDED.street, city = EXCLUDED.city,
			postcode = EXCLUDED.postcode, state = EXCLUDED.state, phone = EXCLUDED.phone, updated_at = now()
		WHERE (p.family, p.given, p.birth_date, p.sex, p.street, p.city, p.postcode, p.state, p.phone)
		      IS DISTINCT FROM
		      (EXCLUDED.family, EXCLUDED.given, EXCLUDED.birth_date, EXCLUDED.sex, EXCLUDED.street,
		       EXCLUDED.city, EXCLUDED.postcode, EXCLUDED.state, EXCLUDED.phone)
		RETURNING (xmax = 0)`)
	if err != nil {
		return 0, 0, fmt.Errorf("import merge: %w", err)
	}
	for r.Next() {
		var ins bool
		if err := r.Scan(&ins); err != nil {
			r.Close()
			return 0, 0, err
		}
		if ins {
			inserted++
		} else {
			updated++
		}
	}
	r.Close()
	if err := r.Err(); err != nil {
		return 0, 0, fmt.Errorf("import merge: %w", err)
	}
	return inserted, updated, tx.Commit(ctx)
}

// Candidates returns EMPI patients with the page's MRN, or with its family name and
// birth date, or with its birth date and a similar name: at most limit of them.
func (db *DB) Candidates(ctx context.Context, mrn, family, birthDate string, limit int) ([]chartscan.Patient, error) {
	var dob *time.Time
	if t, err := time.Parse(time.DateOnly, birthDate); err == nil {
		dob = &t
	}
	rows, err := db.pool.Query(ctx, `
		SELECT mrn, family, given, coalesce(to_char(birth_date, 'YYYY-MM-DD'), ''), sex, street, city, postcode, state, phone
		FROM patients
		WHERE ($1 <> '' AND mrn = $1)
		   OR ($2 <> '' AND lower(family) = lower($2) AND birth_date = $3)
		   OR ($2 <> '' AND birth_date = $3 AND similarity(lower(family), lower($2)) > 0.4)
		LIMIT $4`, mrn, family, dob, limit)
	if err != nil {
		return nil, fmt.Errorf("candidates: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chartscan.Patient, error) {
		var p chartscan.Patient
		err := r.Scan(&p.MRN, &p.Family, &p.Given, &p.BirthDate, &p.Sex, &p.Street, &p.City, &p.Postcode, &p.State, &p.Phone)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("candidates: %w", err)
	}
	return ps, nil
}

// PatientCount returns how many patients the EMPI holds.
func (db *DB) PatientCount(ctx context.Context) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM patients`).Scan(&n)
	return n, err
}
