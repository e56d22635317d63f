package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/chartscan/chartscan"
)

// ImportStats counts what an EMPI import did.
type ImportStats struct {
	Read      int // records read
	Inserted  int // new patients
	Updated   int // patients whose record changed
	Unchanged int // patients already stored exactly so
	Repeated  int // records overridden by a later record with the same MRN in the same file
	// Merged counts the records of MRNs merged into another patient: not imported, as
	// a merged MRN stays an alias and its record is not brought back.
	Merged int
	// SystemConflicts counts the records whose MRN is stored for a patient of another
	// system or assigning authority: not imported, as the same number from another
	// facility is another patient. IDConflicts counts other identifiers not linked
	// because another patient holds them already.
	SystemConflicts, IDConflicts int
	// Skipped counts the records of the file that could not be imported, and
	// SkippedRecords lists them (the first of them, in a large file). The caller that
	// reads the file fills both in: ImportPatients sees only the patients.
	Skipped        int
	SkippedRecords []SkippedRecord
}

// SkippedRecord is a record of an import file that could not be imported: where it is in
// the file ("line 12", "entry[71]") and why ("no MRN"). Neither is PHI.
type SkippedRecord struct {
	Where  string `json:"where"`
	Reason string `json:"reason"`
}

// String returns "where: reason".
func (s SkippedRecord) String() string { return s.Where + ": " + s.Reason }

// importChunk is how many patients go to Postgres in one COPY: large enough that COPY's
// speed dominates, small enough to keep memory flat on a million-row file.
const importChunk = 20000

// importWorkers merge chunks at once, each on its own connection: a merge keeps one
// PostgreSQL backend busy, so two use both cores of a small server.
const importWorkers = 2

var patientColumns = []string{"mrn", "family", "given", "birth_date", "birth_partial", "sex", "street", "city", "postcode", "state", "phone", "mrn_system"}

// Record is a patient as an import file gives it: the patient, the system or assigning
// authority of its MRN (” when the file names none) and its other identifiers.
type Record struct {
	chartscan.Patient
	MRNSystem string
	IDs       []PatientID
}

// PatientID is an identifier of a patient other than its MRN, by the system that issued
// it: another facility's MRN, a national or a payer's id. The candidate search finds a
// patient by its value too.
type PatientID struct {
	System, Value string
}

// importer is one merge worker: the chunk it is filling, and the MRNs in it.
type importer struct {
	rows  [][]any
	ids   [][]any
	seen  map[string]int
	ch    chan importChunkRows
	stats ImportStats
}

// importChunkRows is one chunk of patients and their other identifiers.
type importChunkRows struct {
	rows, ids [][]any
}

// ImportPatients upserts by MRN the patients that records yields. A patient's BirthDate
// is YYYY-MM-DD, a partial YYYY or YYYY-MM (kept in birth_partial) or empty; an empty
// name or birth date is stored as such, never filled in. Each chunk is copied
// into a temporary table with COPY and merged in one statement that touches only rows
// that differ, so importing the same file twice changes nothing. Chunks are merged by
// importWorkers connections at once; an MRN always goes to the same worker, in file
// order, so the last record of an MRN wins as it would one by one.
func (db *DB) ImportPatients(ctx context.Context, records func(yield func(chartscan.Patient) error) error) (ImportStats, error) {
	return db.ImportRecords(ctx, func(yield func(Record) error) error {
		return records(func(p chartscan.Patient) error { return yield(Record{Patient: p}) })
	})
}

// ImportRecords is ImportPatients for records with their MRN's system and other
// identifiers. A record whose MRN is stored with another system is not imported
// (SystemConflicts); an MRN stored without one takes the record's. Other identifiers
// are linked to their patient unless another patient holds them (IDConflicts).
func (db *DB) ImportRecords(ctx context.Context, records func(yield func(Record) error) error) (ImportStats, error) {
	var st ImportStats
	g, gctx := errgroup.WithContext(ctx)
	workers := make([]*importer, importWorkers)
	for i := range workers {
		w := &importer{seen: make(map[string]int, importChunk), ch: make(chan importChunkRows, 1)}
		workers[i] = w
		g.Go(func() error {
			conn, err := db.pool.Acquire(gctx)
			if err != nil {
				for range w.ch { // keep the producer from blocking
				}
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(gctx, `
				CREATE TEMP TABLE IF NOT EXISTS patients_in (LIKE patients INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
				CREATE TEMP TABLE IF NOT EXISTS ids_in (system text, value text, mrn text) ON COMMIT DELETE ROWS`); err != nil {
				for range w.ch {
				}
				return fmt.Errorf("import: %w", err)
			}
			var ferr error
			for c := range w.ch {
				if ferr != nil {
					continue
				}
				ms, err := mergePatients(gctx, conn.Conn(), patientColumns, c.rows, c.ids)
				if err != nil {
					ferr = err
					continue
				}
				w.stats.Inserted += ms.Inserted
				w.stats.Updated += ms.Updated
				w.stats.Merged += ms.Merged
				w.stats.SystemConflicts += ms.SystemConflicts
				w.stats.IDConflicts += ms.IDConflicts
				w.stats.Unchanged += len(c.rows) - ms.Inserted - ms.Updated - ms.Merged - ms.SystemConflicts
			}
			return ferr
		})
	}
	send := func(w *importer) error {
		if len(w.rows) == 0 {
			return nil
		}
		select {
		case w.ch <- importChunkRows{w.rows, w.ids}:
		case <-gctx.Done():
			return gctx.Err()
		}
		w.rows, w.ids = make([][]any, 0, importChunk), nil
		clear(w.seen)
		return nil
	}
	err := records(func(r Record) error {
		st.Read++
		p := r.Patient
		dob, partial, ok := birthColumns(p.BirthDate)
		if !ok {
			return fmt.Errorf("record %d: birth date is not YYYY-MM-DD, YYYY-MM or YYYY", st.Read)
		}
		row := []any{p.MRN, p.Family, p.Given, dob, partial, p.Sex, p.Street, p.City, p.Postcode, p.State, p.Phone, r.MRNSystem}
		w := workers[fnv32(p.MRN)%importWorkers]
		for _, id := range r.IDs {
			if id.Value != "" {
				w.ids = append(w.ids, []any{id.System, id.Value, p.MRN})
			}
		}
		// The last record of an MRN wins, within a chunk as across chunks.
		if i, dup := w.seen[p.MRN]; dup {
			w.rows[i] = row
			st.Repeated++
			return nil
		}
		w.seen[p.MRN] = len(w.rows)
		w.rows = append(w.rows, row)
		if len(w.rows) == importChunk {
			return send(w)
		}
		return nil
	})
	for _, w := range workers {
		if err == nil {
			err = send(w)
		}
		close(w.ch)
	}
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	for _, w := range workers {
		st.Inserted += w.stats.Inserted
		st.Updated += w.stats.Updated
		st.Unchanged += w.stats.Unchanged
		st.Merged += w.stats.Merged
		st.SystemConflicts += w.stats.SystemConflicts
		st.IDConflicts += w.stats.IDConflicts
	}
	if err != nil {
		return st, err
	}
	if st.Inserted+st.Updated > 0 {
		return st, db.refreshSurnameCounts(ctx)
	}
	return st, nil
}

// birthColumns splits a patient's birth date into the birth_date and birth_partial
// columns: a whole date goes to the first, a year or year and month to the second.
func birthColumns(s string) (dob *time.Time, partial *string, ok bool) {
	switch len(s) {
	case 0:
		return nil, nil, true
	case len(time.DateOnly):
		t, err := time.Parse(time.DateOnly, s)
		return &t, nil, err == nil
	case len("2006"), len("2006-01"):
		if _, err := time.Parse("2006-01"[:len(s)], s); err != nil {
			return nil, nil, false
		}
		return nil, &s, true
	}
	return nil, nil, false
}

// birthDateSQL is a patient's birth date as Patient.BirthDate holds it, for the
// patients table p.
const birthDateSQL = `coalesce(to_char(p.birth_date, 'YYYY-MM-DD'), p.birth_partial, '')`

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func mergePatients(ctx context.Context, conn *pgx.Conn, cols []string, rows, ids [][]any) (st ImportStats, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return st, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"patients_in"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return st, fmt.Errorf("import copy: %w", err)
	}
	// A merged MRN stays an alias: a record of it in a file exported before the merge
	// must not bring it back.
	tag, err := tx.Exec(ctx, `DELETE FROM patients_in i USING patient_aliases a WHERE i.mrn = a.alias_mrn`)
	if err != nil {
		return st, fmt.Errorf("import aliases: %w", err)
	}
	st.Merged = int(tag.RowsAffected())
	// The same number from another system is another patient: refused, not merged.
	tag, err = tx.Exec(ctx, `DELETE FROM patients_in i USING patients p
		WHERE p.mrn = i.mrn AND p.mrn_system <> '' AND i.mrn_system <> '' AND lower(p.mrn_system) <> lower(i.mrn_system)`)
	if err != nil {
		return st, fmt.Errorf("import systems: %w", err)
	}
	st.SystemConflicts = int(tag.RowsAffected())
	// xmax = 0 tells an inserted row from an updated one.
	r, err := tx.Query(ctx, `
		INSERT INTO patients AS p (mrn, family, given, birth_date, birth_partial, sex, street, city, postcode, state, phone, mrn_system)
		SELECT mrn, family, given, birth_date, birth_partial, sex, street, city, postcode, state, phone, mrn_system FROM patients_in
		ON CONFLICT (mrn) DO UPDATE SET
			family = EXCLUDED.family, given = EXCLUDED.given, birth_date = EXCLUDED.birth_date,
			birth_partial = EXCLUDED.birth_partial, sex = EXCLUDED.sex, street = EXCLUDED.street, city = EXCLUDED.city,
			postcode = EXCLUDED.postcode, state = EXCLUDED.state, phone = EXCLUDED.phone,
			mrn_system = CASE WHEN p.mrn_system = '' THEN EXCLUDED.mrn_system ELSE p.mrn_system END, updated_at = now()
		WHERE (p.family, p.given, p.birth_date, p.birth_partial, p.sex, p.street, p.city, p.postcode, p.state, p.phone)
		      IS DISTINCT FROM
		      (EXCLUDED.family, EXCLUDED.given, EXCLUDED.birth_date, EXCLUDED.birth_partial, EXCLUDED.sex, EXCLUDED.street,
		       EXCLUDED.city, EXCLUDED.postcode, EXCLUDED.state, EXCLUDED.phone)
		   OR (p.mrn_system = '' AND EXCLUDED.mrn_system <> '')
		RETURNING (xmax = 0)`)
	if err != nil {
		return st, fmt.Errorf("import merge: %w", err)
	}
	for r.Next() {
		var ins bool
		if err := r.Scan(&ins); err != nil {
			r.Close()
			return st, err
		}
		if ins {
			st.Inserted++
		} else {
			st.Updated++
		}
	}
	r.Close()
	if err := r.Err(); err != nil {
		return st, fmt.Errorf("import merge: %w", err)
	}
	if len(ids) > 0 {
		if st.IDConflicts, err = linkIdentifiers(ctx, tx, ids); err != nil {
			return st, err
		}
	}
	return st, tx.Commit(ctx)
}

// linkIdentifiers links other identifiers (system, value, mrn rows) to their patients
// inside tx, skipping those of patients not imported; it returns how many another
// patient holds already, which stay with that patient.
func linkIdentifiers(ctx context.Context, tx pgx.Tx, ids [][]any) (int, error) {
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ids_in"}, []string{"system", "value", "mrn"}, pgx.CopyFromRows(ids)); err != nil {
		return 0, fmt.Errorf("import identifiers: %w", err)
	}
	var conflicts int
	err := tx.QueryRow(ctx, `
		WITH wanted AS (
			SELECT DISTINCT i.system, i.value, i.mrn FROM ids_in i JOIN patients p ON p.mrn = i.mrn
		), linked AS (
			INSERT INTO patient_identifiers (system, value, mrn)
			SELECT DISTINCT ON (system, value) system, value, mrn FROM wanted ORDER BY system, value, mrn
			ON CONFLICT (system, value) DO NOTHING
			RETURNING system, value, mrn
		)
		SELECT count(*) FROM wanted w
		WHERE NOT EXISTS (SELECT 1 FROM linked l WHERE l.system = w.system AND l.value = w.value AND l.mrn = w.mrn)
		  AND NOT EXISTS (SELECT 1 FROM patient_identifiers x WHERE x.system = w.system AND x.value = w.value AND x.mrn = w.mrn)`).Scan(&conflicts)
	if err != nil {
		return 0, fmt.Errorf("import identifiers: %w", err)
	}
	return conflicts, nil
}

// Candidates returns the EMPI patients in the union of the blocks — exact MRN (or an
// alias a merge left, or another identifier of the patient), phonetic surname with birth
// year, exact birth date, trigram-similar full name within the birth year among the names
// sharing the family-name initial, again among those sharing the given-name initial, and
// among those whose family name starts with the page's given-name initial (names entered
// the wrong way round; trigrams do not see word order) — each patient once, at most limit
// per block. Every block has an index. (The name blocks were one, over the whole birth
// year, until it cost 75% of the search on a 10^6-patient EMPI: migration 00021.)
func (db *DB) Candidates(ctx context.Context, q chartscan.CandidateQuery, limit int) ([]chartscan.Patient, error) {
	ps, _, err := db.CandidatesWithShares(ctx, q, limit)
	return ps, err
}

// CandidatesWithShares is Candidates with, in the same query, the surname share of each
// candidate's family name (keyed by the lower-cased name): the share of EMPI patients who
// carry it, the term frequency that makes a common name weigh less.
func (db *DB) CandidatesWithShares(ctx context.Context, q chartscan.CandidateQuery, limit int) ([]chartscan.Patient, map[string]float64, error) {
	var dob *time.Time
	if t, err := time.Parse(time.DateOnly, q.BirthDate); err == nil {
		dob = &t
		if q.BirthYear == 0 {
			q.BirthYear = t.Year()
		}
	}
	full := strings.ToLower(strings.TrimSpace(q.Family + " " + q.Given))
	if q.Family == "" {
		full = ""
	}
	initial := func(name string) string {
		for _, r := range strings.ToLower(strings.TrimSpace(name)) {
			return string(r)
		}
		return ""
	}
	familyInitial, givenInitial := "", ""
	if full != "" {
		familyInitial, givenInitial = initial(q.Family), initial(q.Given)
	}
	rows, err := db.pool.Query(ctx, `
		WITH hits AS (
			(SELECT mrn FROM patients WHERE mrn = ANY($1::text[]) LIMIT $6)
			UNION
			(SELECT mrn FROM patient_aliases WHERE alias_mrn = ANY($1::text[]) LIMIT $6)
			UNION
			(SELECT mrn FROM patient_identifiers WHERE value = ANY($1::text[]) LIMIT $6)
			UNION
			(SELECT mrn FROM patients WHERE $2 <> '' AND $4 > 0 AND family_key = dmetaphone($2) AND birth_year = $4 LIMIT $6)
			UNION
			(SELECT mrn FROM patients WHERE birth_date = $3 ORDER BY similarity(full_name, $5) DESC LIMIT $6)
			UNION
			(SELECT mrn FROM patients WHERE $8 <> '' AND birth_year = $4 AND lower(left(family, 1)) = $8 AND full_name % $5
			 ORDER BY full_name <-> $5 LIMIT $6)
			UNION
			(SELECT mrn FROM patients WHERE $7 <> '' AND birth_year = $4 AND lower(left(given, 1)) = $7 AND full_name % $5
			 ORDER BY full_name <-> $5 LIMIT $6)
			UNION
			(SELECT mrn FROM patients WHERE $7 <> '' AND $7 <> $8 AND birth_year = $4 AND lower(left(family, 1)) = $7 AND full_name % $5
			 ORDER BY full_name <-> $5 LIMIT $6)
		)
		SELECT p.mrn, p.family, p.given, `+birthDateSQL+`, p.sex,
		       p.street, p.city, p.postcode, p.state, p.phone,
		       coalesce(c.n, 0)::float8 / greatest((SELECT value FROM empi_stats WHERE key = 'surnames_total'), 1)
		FROM hits JOIN patients p USING (mrn) LEFT JOIN surname_counts c ON c.family = lower(p.family)`,
		q.MRNs, q.Family, dob, q.BirthYear, full, limit, givenInitial, familyInitial)
	if err != nil {
		return nil, nil, fmt.Errorf("candidates: %w", err)
	}
	shares := map[string]float64{}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chartscan.Patient, error) {
		var p chartscan.Patient
		var share float64
		err := r.Scan(&p.MRN, &p.Family, &p.Given, &p.BirthDate, &p.Sex, &p.Street, &p.City, &p.Postcode, &p.State, &p.Phone, &share)
		if p.Family != "" {
			shares[strings.ToLower(p.Family)] = share
		}
		return p, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("candidates: %w", err)
	}
	return ps, shares, nil
}

// refreshSurnameCounts recounts surnames after an import changed the EMPI.
func (db *DB) refreshSurnameCounts(ctx context.Context) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE surname_now ON COMMIT DROP AS
			SELECT lower(family) AS family, count(*)::int AS n FROM patients WHERE family <> '' GROUP BY 1;
		DELETE FROM surname_counts c WHERE NOT EXISTS (SELECT 1 FROM surname_now s WHERE s.family = c.family);
		INSERT INTO surname_counts (family, n) SELECT family, n FROM surname_now
			ON CONFLICT (family) DO UPDATE SET n = EXCLUDED.n WHERE surname_counts.n <> EXCLUDED.n;
		INSERT INTO empi_stats (key, value) SELECT 'surnames_total', coalesce(sum(n), 0) FROM surname_now
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;`); err != nil {
		return fmt.Errorf("surname counts: %w", err)
	}
	return tx.Commit(ctx)
}

// MergePatients applies an EMPI merge whose survivor is in the EMPI: the merged-away MRN
// becomes an alias of the survivor, pages filed to it move to the survivor, and the move
// is written to the audit log with the number of pages moved. It returns that number.
// ApplyEMPIChanges applies the merges of an HL7 feed, whose survivor may be new.
func (db *DB) MergePatients(ctx context.Context, survivor, merged, actor string) (int, error) {
	if survivor == merged {
		return 0, chartscan.Errorf(chartscan.EInvalid, "a patient cannot be merged into itself")
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM patients WHERE mrn = $1)`, survivor).Scan(&ok); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	if !ok {
		return 0, chartscan.Errorf(chartscan.ENotFound, "the surviving patient of a merge is not in the EMPI")
	}
	moved, err := mergeInto(ctx, tx, survivor, merged, actor)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return moved, nil
}

// mergeInto merges the patient merged into survivor, who is in the EMPI, inside tx: pages
// filed to merged and candidates naming it move to survivor (their patient documents
// with them), aliases of merged and merged itself become aliases of survivor, its record
// goes (its surname count with it), and the merge is audited. merged need not be in the
// EMPI: its alias is recorded all the same, so that a late record of it cannot bring it
// back.
func mergeInto(ctx context.Context, tx pgx.Tx, survivor, merged, actor string) (int, error) {
	// The pages are locked document by document in page order first, as a filing locks a
	// document's pages (SaveFilingsAt): an UPDATE alone takes them in the order it finds
	// them, and could hold a later page of a document a filing holds the start of.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM pages WHERE mrn = $1 ORDER BY document_id, page_no FOR UPDATE`, merged); err != nil {
		return 0, fmt.Errorf("merge: move pages: %w", err)
	}
	rows, err := tx.Query(ctx, `UPDATE pages SET mrn = $1, updated_at = now() WHERE mrn = $2 RETURNING document_id::text`, survivor, merged)
	if err != nil {
		return 0, fmt.Errorf("merge: move pages: %w", err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("merge: move pages: %w", err)
	}
	moved := len(docs)
	// The merged patient's other identifiers go to the survivor (those the survivor's
	// system holds otherwise stay where they are).
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS merged_ids (system text, value text) ON COMMIT DROP;
		DELETE FROM merged_ids`); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO merged_ids SELECT system, value FROM patient_identifiers WHERE mrn = $1`, merged); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	var family *string
	if err := tx.QueryRow(ctx, `DELETE FROM patients WHERE mrn = $1 RETURNING family`, merged).Scan(&family); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("merge: %w", err)
	}
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE page_candidates SET mrn = $1 WHERE mrn = $2`, survivor, merged)
	batch.Queue(`INSERT INTO patient_identifiers (system, value, mrn) SELECT system, value, $1 FROM merged_ids
		ON CONFLICT (system, value) DO NOTHING`, survivor)
	batch.Queue(`UPDATE patient_aliases SET mrn = $1 WHERE mrn = $2`, survivor, merged)
	batch.Queue(`INSERT INTO patient_aliases (alias_mrn, mrn) VALUES ($2, $1)
		ON CONFLICT (alias_mrn) DO UPDATE SET mrn = EXCLUDED.mrn, merged_at = now()`, survivor, merged)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	if family != nil {
		if err := countSurname(ctx, tx, *family, -1); err != nil {
			return 0, err
		}
	}
	// The patient documents of the moved pages follow them: one the EHR holds is
	// superseded by a version under the survivor's MRN.
	slices.Sort(docs)
	for _, id := range slices.Compact(docs) {
		if err := refreshPatientDocuments(ctx, tx, id); err != nil {
			return 0, err
		}
	}
	if err := appendAudit(ctx, tx, AuditEntry{Actor: actor, Action: "empi.merge", Object: "patient:" + survivor,
		Outcome: "ok", Detail: map[string]any{"merged_mrn": merged, "pages_moved": moved, "merged_known": family != nil}}); err != nil {
		return 0, err
	}
	return moved, nil
}

// countSurname adds delta patients to a surname's count and to the total, inside tx: a
// change of one patient costs two rows, not a recount of the EMPI.
func countSurname(ctx context.Context, tx pgx.Tx, family string, delta int) error {
	f := strings.ToLower(family)
	if f == "" {
		return nil
	}
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO surname_counts (family, n) VALUES ($1, $2)
		ON CONFLICT (family) DO UPDATE SET n = surname_counts.n + EXCLUDED.n`, f, delta)
	batch.Queue(`DELETE FROM surname_counts WHERE family = $1 AND n <= 0`, f)
	batch.Queue(`INSERT INTO empi_stats (key, value) VALUES ('surnames_total', greatest($1, 0))
		ON CONFLICT (key) DO UPDATE SET value = greatest(empi_stats.value + $1, 0)`, delta)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("surname counts: %w", err)
	}
	return nil
}

// EMPIChange is one change an HL7 v2 message asks of the EMPI.
type EMPIChange struct {
	Kind ChangeKind
	// Patient is the patient to insert or update (ChangeUpsert), or the survivor of a
	// merge as the message gives it, which may hold only its MRN.
	Patient chartscan.Patient
	// MergedMRN is the MRN merged into Patient.MRN (ChangeMerge, ChangeUnmerge).
	MergedMRN string
	// Demographics reports that Patient holds more than an MRN: a merge whose survivor is
	// not in the EMPI creates it from Patient then.
	Demographics bool
	// MRNSystem is the system or assigning authority of Patient.MRN ('' unnamed), and
	// IDs the patient's other identifiers (an upsert's).
	MRNSystem string
	IDs       []PatientID
}

// ChangeKind is what an EMPIChange does.
type ChangeKind string

// The kinds of EMPIChange.
const (
	ChangeUpsert  ChangeKind = "upsert"
	ChangeMerge   ChangeKind = "merge"
	ChangeUnmerge ChangeKind = "unmerge"
)

// MessageKey names an HL7 message: who sent it (MSH-3^MSH-4), its control id (MSH-10),
// its event, and the digest of its content.
type MessageKey struct {
	Sender, ControlID, Event string
	Digest                   [32]byte
}

// ChangeResult is what ApplyEMPIChanges did.
type ChangeResult struct {
	// Duplicate reports a message applied before (the same sender, control id and
	// content): nothing was applied again.
	Duplicate                    bool
	Inserted, Updated, Unchanged int
	Merges                       int // merges applied; a merge applied before counts as unchanged
	PagesMoved                   int
	// Touched are the MRNs of the patients this message made or changed, or merged
	// into: pages in review or unmatched may file to them now (DocumentsToRefile).
	Touched []string
	// IDConflicts counts other identifiers not linked: another patient holds them.
	IDConflicts int
}

// Sentinel errors of ApplyEMPIChanges, wrapped in a *ChangeError.
var (
	// ErrMergedMRN: an upsert names an MRN that was merged into another patient. A
	// merged MRN stays an alias for ever; its record is not brought back.
	ErrMergedMRN = errors.New("the MRN was merged into another patient: send changes for the surviving MRN")
	// ErrMergeConflict: the merged MRN was merged into another patient than this survivor.
	ErrMergeConflict = errors.New("the merged MRN was already merged into another patient")
	// ErrUnmerge: a merge cannot be undone by a message; a person must do it.
	ErrUnmerge = errors.New("unmerge is not applied automatically: a person must undo the merge")
	// ErrSystemConflict: the MRN is stored for a patient of another system or assigning
	// authority; the same number from another facility is another patient.
	ErrSystemConflict = errors.New("the MRN belongs to a patient of another assigning authority")
)

// ChangeError is the error of the change at Index of an ApplyEMPIChanges call: nothing of
// the call was applied. Err is one of the sentinel errors; neither holds patient data.
type ChangeError struct {
	Index int
	Err   error
}

func (e *ChangeError) Error() string { return e.Err.Error() }

func (e *ChangeError) Unwrap() error { return e.Err }

// ApplyEMPIChanges applies the changes of one HL7 message in one transaction, all or
// none, and records key (when not nil) in it, so a message sent again unchanged is
// reported Duplicate and not applied twice. Upserts insert a patient, or update the
// fields the message gives (an empty field keeps the stored value, as HL7 means it); an
// upsert of a merged MRN is refused (ErrMergedMRN). A merge resolves its survivor
// through the aliases (a merge into an MRN merged since goes to the patient that holds
// it now); a survivor not in the EMPI is created from the message's PID when it names
// the patient, else from the merged patient's record, else with its MRN alone. A merge
// applied before changes nothing. An unmerge is refused (ErrUnmerge) and audited for a
// person to act on. actor names who applied it in the audit log.
func (db *DB) ApplyEMPIChanges(ctx context.Context, key *MessageKey, changes []EMPIChange, actor string) (ChangeResult, error) {
	var res ChangeResult
	for i, c := range changes {
		if c.Kind == ChangeUnmerge {
			// Refused before anything is applied; the refusal is audited on its own, as the
			// message's transaction is not committed.
			err := db.Audit(ctx, AuditEntry{Actor: actor, Action: "empi.unmerge", Object: "patient:" + c.Patient.MRN,
				Outcome: "refused", Detail: map[string]any{"merged_mrn": c.MergedMRN, "reason": "an unmerge needs a person"}})
			if err != nil {
				return res, err
			}
			return res, &ChangeError{Index: i, Err: ErrUnmerge}
		}
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	defer tx.Rollback(ctx)
	if key != nil {
		// One message at a time per control id: a resend racing the original waits for it.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 12))`, key.Sender+"\n"+key.ControlID); err != nil {
			return res, fmt.Errorf("apply: %w", err)
		}
		var digest []byte
		err := tx.QueryRow(ctx, `SELECT digest FROM hl7_messages WHERE sender = $1 AND control_id = $2`, key.Sender, key.ControlID).Scan(&digest)
		if err == nil && string(digest) == string(key.Digest[:]) {
			res.Duplicate = true
			return res, nil
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return res, fmt.Errorf("apply: %w", err)
		}
	}
	touched := map[string]bool{}
	for i, c := range changes {
		switch c.Kind {
		case ChangeUpsert:
			st, err := upsertPatient(ctx, tx, c.Patient, c.MRNSystem)
			if err != nil {
				return ChangeResult{}, wrapChange(i, err)
			}
			if len(c.IDs) > 0 {
				n, err := linkPatientIDs(ctx, tx, c.Patient.MRN, c.IDs)
				if err != nil {
					return ChangeResult{}, err
				}
				res.IDConflicts += n
			}
			switch st {
			case upsertInserted:
				res.Inserted++
				touched[c.Patient.MRN] = true
			case upsertUpdated:
				res.Updated++
				touched[c.Patient.MRN] = true
			default:
				res.Unchanged++
			}
		case ChangeMerge:
			survivor, moved, applied, err := applyMerge(ctx, tx, c, actor)
			if err != nil {
				return ChangeResult{}, wrapChange(i, err)
			}
			if applied {
				res.Merges++
				res.PagesMoved += moved
				touched[survivor] = true
			} else {
				res.Unchanged++
			}
		default:
			return ChangeResult{}, fmt.Errorf("apply: unknown change %q", c.Kind)
		}
	}
	if key != nil {
		if _, err := tx.Exec(ctx, `INSERT INTO hl7_messages (sender, control_id, digest, event) VALUES ($1, $2, $3, $4)
			ON CONFLICT (sender, control_id) DO UPDATE SET digest = EXCLUDED.digest, event = EXCLUDED.event, applied_at = now()`,
			key.Sender, key.ControlID, key.Digest[:], key.Event); err != nil {
			return ChangeResult{}, fmt.Errorf("apply: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return ChangeResult{}, fmt.Errorf("apply: %w", err)
	}
	for mrn := range touched {
		res.Touched = append(res.Touched, mrn)
	}
	slices.Sort(res.Touched)
	return res, nil
}

// wrapChange names the change an error of one belongs to; a sentinel becomes a
// *ChangeError, anything else stays internal.
func wrapChange(i int, err error) error {
	for _, s := range []error{ErrMergedMRN, ErrMergeConflict, ErrUnmerge, ErrSystemConflict} {
		if errors.Is(err, s) {
			return &ChangeError{Index: i, Err: s}
		}
	}
	return err
}

type upsertStatus int

const (
	upsertUnchanged upsertStatus = iota
	upsertInserted
	upsertUpdated
)

// upsertPatient inserts p, or updates the stored patient with the fields p gives, inside
// tx; it refuses an MRN merged into another patient, and one stored for another system.
func upsertPatient(ctx context.Context, tx pgx.Tx, p chartscan.Patient, system string) (upsertStatus, error) {
	var alias bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM patient_aliases WHERE alias_mrn = $1)`, p.MRN).Scan(&alias); err != nil {
		return 0, fmt.Errorf("upsert: %w", err)
	}
	if alias {
		return 0, ErrMergedMRN
	}
	old, found, err := patientForUpdate(ctx, tx, p.MRN)
	if err != nil {
		return 0, err
	}
	if !found {
		return upsertInserted, insertPatient(ctx, tx, p, system)
	}
	var stored string
	if err := tx.QueryRow(ctx, `SELECT mrn_system FROM patients WHERE mrn = $1`, p.MRN).Scan(&stored); err != nil {
		return 0, fmt.Errorf("upsert: %w", err)
	}
	switch {
	case stored != "" && system != "" && !strings.EqualFold(stored, system):
		return 0, ErrSystemConflict
	case stored == "" && system != "":
		if _, err := tx.Exec(ctx, `UPDATE patients SET mrn_system = $2 WHERE mrn = $1`, p.MRN, system); err != nil {
			return 0, fmt.Errorf("upsert: %w", err)
		}
	}
	next := old
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&next.Family, p.Family}, {&next.Given, p.Given}, {&next.BirthDate, p.BirthDate}, {&next.Street, p.Street},
		{&next.City, p.City}, {&next.Postcode, p.Postcode}, {&next.State, p.State}, {&next.Phone, p.Phone},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	if p.Sex != "" && p.Sex != "unknown" {
		next.Sex = p.Sex
	}
	if next == old {
		return upsertUnchanged, nil
	}
	dob, partial, ok := birthColumns(next.BirthDate)
	if !ok {
		return 0, fmt.Errorf("upsert: birth date is not YYYY-MM-DD, YYYY-MM or YYYY")
	}
	if _, err := tx.Exec(ctx, `UPDATE patients SET family = $2, given = $3, birth_date = $4, birth_partial = $5, sex = $6,
		street = $7, city = $8, postcode = $9, state = $10, phone = $11, updated_at = now() WHERE mrn = $1`,
		p.MRN, next.Family, next.Given, dob, partial, next.Sex, next.Street, next.City, next.Postcode, next.State, next.Phone); err != nil {
		return 0, fmt.Errorf("upsert: %w", err)
	}
	if !strings.EqualFold(old.Family, next.Family) {
		if err := countSurname(ctx, tx, old.Family, -1); err != nil {
			return 0, err
		}
		if err := countSurname(ctx, tx, next.Family, 1); err != nil {
			return 0, err
		}
	}
	return upsertUpdated, nil
}

// linkPatientIDs links other identifiers to the patient mrn inside tx and returns how
// many another patient holds already: those stay with it, never merged silently.
func linkPatientIDs(ctx context.Context, tx pgx.Tx, mrn string, ids []PatientID) (int, error) {
	conflicts := 0
	for _, id := range ids {
		if id.Value == "" {
			continue
		}
		var holder string
		err := tx.QueryRow(ctx, `WITH ins AS (
				INSERT INTO patient_identifiers (system, value, mrn) VALUES ($1, $2, $3)
				ON CONFLICT (system, value) DO NOTHING RETURNING mrn)
			SELECT mrn FROM ins UNION ALL SELECT mrn FROM patient_identifiers WHERE system = $1 AND value = $2`,
			id.System, id.Value, mrn).Scan(&holder)
		if err != nil {
			return 0, fmt.Errorf("identifiers: %w", err)
		}
		if holder != mrn {
			conflicts++
		}
	}
	return conflicts, nil
}

// patientForUpdate reads and locks one patient inside tx.
func patientForUpdate(ctx context.Context, tx pgx.Tx, mrn string) (chartscan.Patient, bool, error) {
	var p chartscan.Patient
	err := tx.QueryRow(ctx, `SELECT p.mrn, p.family, p.given, `+birthDateSQL+`, p.sex, p.street, p.city, p.postcode, p.state, p.phone
		FROM patients p WHERE p.mrn = $1 FOR UPDATE`, mrn).
		Scan(&p.MRN, &p.Family, &p.Given, &p.BirthDate, &p.Sex, &p.Street, &p.City, &p.Postcode, &p.State, &p.Phone)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("patient: %w", err)
	}
	return p, true, nil
}

// insertPatient inserts a new patient inside tx and counts its surname; system is its
// MRN's (” unnamed).
func insertPatient(ctx context.Context, tx pgx.Tx, p chartscan.Patient, system string) error {
	dob, partial, ok := birthColumns(p.BirthDate)
	if !ok {
		return fmt.Errorf("insert patient: birth date is not YYYY-MM-DD, YYYY-MM or YYYY")
	}
	if p.Sex == "" {
		p.Sex = "unknown"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO patients (mrn, family, given, birth_date, birth_partial, sex, street, city, postcode, state, phone, mrn_system)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		p.MRN, p.Family, p.Given, dob, partial, p.Sex, p.Street, p.City, p.Postcode, p.State, p.Phone, system); err != nil {
		return fmt.Errorf("insert patient: %w", err)
	}
	return countSurname(ctx, tx, p.Family, 1)
}

// applyMerge applies one merge inside tx. It returns the survivor's MRN as it resolved
// through the aliases, the pages moved, and whether anything changed (false for a merge
// applied before).
func applyMerge(ctx context.Context, tx pgx.Tx, c EMPIChange, actor string) (survivor string, moved int, applied bool, err error) {
	survivor, merged := c.Patient.MRN, c.MergedMRN
	resolve := func(mrn string) (string, error) {
		var to string
		err := tx.QueryRow(ctx, `SELECT mrn FROM patient_aliases WHERE alias_mrn = $1`, mrn).Scan(&to)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("merge: %w", err)
		}
		return to, nil
	}
	if to, err := resolve(survivor); err != nil {
		return "", 0, false, err
	} else if to != "" {
		survivor = to // merged into another since: the merge goes to the patient that holds it now
	}
	if survivor == merged {
		return survivor, 0, false, nil // the survivor was merged into the merged patient since; nothing left to do
	}
	to, err := resolve(merged)
	if err != nil {
		return "", 0, false, err
	}
	switch to {
	case survivor:
		return survivor, 0, false, nil // applied before
	case "":
	default:
		return "", 0, false, ErrMergeConflict
	}
	_, found, err := patientForUpdate(ctx, tx, survivor)
	if err != nil {
		return "", 0, false, err
	}
	if !found {
		// A merge into a patient not yet registered: an unknown-patient record merged into
		// the real identity, whose registration comes later or never.
		p := c.Patient
		p.MRN = survivor
		if !c.Demographics {
			if old, ok, err := patientForUpdate(ctx, tx, merged); err != nil {
				return "", 0, false, err
			} else if ok {
				p = old
				p.MRN = survivor
			}
		}
		if err := insertPatient(ctx, tx, p, c.MRNSystem); err != nil {
			return "", 0, false, err
		}
	}
	moved, err = mergeInto(ctx, tx, survivor, merged, actor)
	if err != nil {
		return "", 0, false, err
	}
	return survivor, moved, true, nil
}

// DocumentsToRefile returns the finished documents with pages in review or unmatched
// that the patients mrns (new, changed or merged into) could resolve: a page that shows
// one of their MRNs (or an alias of one), or both the family name and the birth date of
// one of them, or that names one of them among its candidates. A name alone is not
// enough: registering a Smith must not re-file every Smith's pages.
func (db *DB) DocumentsToRefile(ctx context.Context, mrns []string) ([]string, error) {
	if len(mrns) == 0 {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `
		WITH pt AS (
			SELECT p.mrn, lower(p.family) AS family, to_char(p.birth_date, 'YYYY-MM-DD') AS dob
			FROM patients p WHERE p.mrn = ANY($1)
		), ids AS (
			SELECT mrn FROM pt UNION SELECT alias_mrn FROM patient_aliases WHERE mrn = ANY($1)
		)
		SELECT DISTINCT p.document_id::text FROM pages p JOIN documents d ON d.id = p.document_id
		WHERE d.status = 'done' AND p.status IN ('review', 'unmatched') AND (
			EXISTS (SELECT 1 FROM page_identifiers i WHERE i.document_id = p.document_id AND i.page_no = p.page_no
				AND i.kind = 'mrn' AND i.value IN (SELECT mrn FROM ids))
			OR EXISTS (SELECT 1 FROM pt, page_identifiers n, page_identifiers b
				WHERE n.document_id = p.document_id AND n.page_no = p.page_no AND n.kind = 'name'
				  AND b.document_id = p.document_id AND b.page_no = p.page_no AND b.kind = 'dob'
				  AND pt.family <> '' AND lower(trim(split_part(n.value, ',', 1))) = pt.family AND b.value = pt.dob)
			OR EXISTS (SELECT 1 FROM page_candidates c WHERE c.document_id = p.document_id AND c.page_no = p.page_no
				AND c.mrn = ANY($1)))
		ORDER BY 1`, mrns)
	if err != nil {
		return nil, fmt.Errorf("documents to refile: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("documents to refile: %w", err)
	}
	return ids, nil
}

// PatientCount returns how many patients the EMPI holds.
func (db *DB) PatientCount(ctx context.Context) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM patients`).Scan(&n)
	return n, err
}
