package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/chartscan/chartscan"
)

func patient(t *testing.T, db *DB, mrn string) (chartscan.Patient, bool) {
	t.Helper()
	tx, err := db.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	p, ok, err := patientForUpdate(context.Background(), tx, mrn)
	if err != nil {
		t.Fatal(err)
	}
	return p, ok
}

func surnameCount(t *testing.T, db *DB, family string) (n, total int) {
	t.Helper()
	ctx := context.Background()
	db.pool.QueryRow(ctx, `SELECT coalesce((SELECT n FROM surname_counts WHERE family = lower($1)), 0)`, family).Scan(&n)
	db.pool.QueryRow(ctx, `SELECT value FROM empi_stats WHERE key = 'surnames_total'`).Scan(&total)
	return n, total
}

func key(id, content string) *MessageKey {
	return &MessageKey{Sender: "SIM^HOSP", ControlID: id, Event: "A04", Digest: sha256.Sum256([]byte(content))}
}

// TestApplyEMPIChangesStream applies a register, update, merge stream as a feed sends
// it, then the same stream again: the second time is all duplicates, and a late record
// of a merged MRN is refused without bringing it back.
func TestApplyEMPIChangesStream(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	upsert := func(p chartscan.Patient) []EMPIChange { return []EMPIChange{{Kind: ChangeUpsert, Patient: p}} }
	stub := chartscan.Patient{MRN: "U1", Family: "Unknown", Given: "Trauma", Sex: "unknown"}
	ann := chartscan.Patient{MRN: "R1", Family: "Quill", Given: "Ann", BirthDate: "1975", Sex: "female"}
	steps := []struct {
		key     *MessageKey
		changes []EMPIChange
		want    ChangeResult
	}{
		{key("1", "a04 stub"), upsert(stub), ChangeResult{Inserted: 1, Touched: []string{"U1"}}},
		{key("2", "a04 ann"), upsert(ann), ChangeResult{Inserted: 1, Touched: []string{"R1"}}},
		// An A08 that sends only the phone keeps the rest; the birth date becomes whole.
		{key("3", "a08 ann"), upsert(chartscan.Patient{MRN: "R1", BirthDate: "1975-04-02", Phone: "555-0101"}),
			ChangeResult{Updated: 1, Touched: []string{"R1"}}},
		{key("4", "a34"), []EMPIChange{{Kind: ChangeMerge, Patient: chartscan.Patient{MRN: "R1"}, MergedMRN: "U1"}},
			ChangeResult{Merges: 1, Touched: []string{"R1"}}},
	}
	for pass := 1; pass <= 2; pass++ {
		for i, s := range steps {
			got, err := db.ApplyEMPIChanges(ctx, s.key, s.changes, "system:test")
			if err != nil {
				t.Fatalf("pass %d step %d: %v", pass, i, err)
			}
			want := s.want
			if pass == 2 {
				want = ChangeResult{Duplicate: true}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pass %d step %d (-want +got):\n%s", pass, i, diff)
			}
		}
	}
	got, _ := patient(t, db, "R1")
	want := chartscan.Patient{MRN: "R1", Family: "Quill", Given: "Ann", BirthDate: "1975-04-02", Sex: "female", Phone: "555-0101"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("survivor (-want +got):\n%s", diff)
	}
	if _, ok := patient(t, db, "U1"); ok {
		t.Error("the merged record is still there")
	}
	// A late A08 of the merged MRN, with another control id: refused, nothing back.
	_, err := db.ApplyEMPIChanges(ctx, key("5", "late a08"), upsert(stub), "system:test")
	var ce *ChangeError
	if !errors.As(err, &ce) || !errors.Is(err, ErrMergedMRN) || ce.Index != 0 {
		t.Errorf("late upsert of a merged MRN: %v, want ErrMergedMRN at 0", err)
	}
	if _, ok := patient(t, db, "U1"); ok {
		t.Error("a late upsert brought the merged MRN back")
	}
	// Nor does a bulk import of a file exported before the merge.
	st := importAll(t, db, stub, ann)
	if st.Merged != 1 || st.Inserted != 0 {
		t.Errorf("bulk import of a merged MRN: %+v, want 1 merged, none inserted", st)
	}
	if _, ok := patient(t, db, "U1"); ok {
		t.Error("a bulk import brought the merged MRN back")
	}
	if n, total := surnameCount(t, db, "unknown"); n != 0 || total != 1 {
		t.Errorf("surname counts after the merge: unknown %d, total %d; want 0 and 1", n, total)
	}
	// The same control id with other content is a new message, and is applied.
	got2, err := db.ApplyEMPIChanges(ctx, key("2", "a04 ann, corrected"), upsert(chartscan.Patient{MRN: "R1", Given: "Anne"}), "system:test")
	if err != nil || got2.Duplicate || got2.Updated != 1 {
		t.Errorf("same control id, other content: %+v, %v", got2, err)
	}
}

// TestApplyEMPIMergeKinds: a merge whose survivor is unknown creates it (from the PID,
// or from the merged record), a merge into an MRN merged since follows the alias, a
// merged MRN cannot be merged into a second patient, and an unmerge is refused and
// audited. A failing change leaves nothing of its message applied.
func TestApplyEMPIMergeKinds(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	importAll(t, db, empi...)
	merge := func(survivor chartscan.Patient, merged string, demo bool) EMPIChange {
		return EMPIChange{Kind: ChangeMerge, Patient: survivor, MergedMRN: merged, Demographics: demo}
	}
	apply := func(cs ...EMPIChange) (ChangeResult, error) { return db.ApplyEMPIChanges(ctx, nil, cs, "system:test") }

	// A PID with a name: the new survivor is that patient.
	if _, err := apply(merge(chartscan.Patient{MRN: "NEW1", Family: "Keats", Given: "John", Sex: "male"}, "100000001", true)); err != nil {
		t.Fatal(err)
	}
	if p, ok := patient(t, db, "NEW1"); !ok || p.Family != "Keats" {
		t.Errorf("survivor from the PID: %+v, %v", p, ok)
	}
	// A PID with only the MRN: the merged record moves to the new MRN (an A47's rename).
	if _, err := apply(merge(chartscan.Patient{MRN: "NEW2"}, "100000004", false)); err != nil {
		t.Fatal(err)
	}
	if p, _ := patient(t, db, "NEW2"); p.Family != "Okonkwo" || p.BirthDate != "1962-03-14" {
		t.Errorf("survivor from the merged record: %+v", p)
	}
	// Neither known: the survivor is a record of its MRN alone, and the alias holds.
	if _, err := apply(merge(chartscan.Patient{MRN: "NEW3"}, "GONE", false)); err != nil {
		t.Fatal(err)
	}
	if _, ok := patient(t, db, "NEW3"); !ok {
		t.Error("no survivor created for a merge of two unknown MRNs")
	}
	// A merge into an MRN merged since goes to its survivor.
	res, err := apply(merge(chartscan.Patient{MRN: "100000001"}, "100000005", false))
	if err != nil || res.Merges != 1 || !cmp.Equal(res.Touched, []string{"NEW1"}) {
		t.Errorf("merge into an alias: %+v, %v; want it applied to NEW1", res, err)
	}
	// A merged MRN merged again into someone else is a conflict, and the message's other
	// changes are not applied.
	_, err = apply(EMPIChange{Kind: ChangeUpsert, Patient: chartscan.Patient{MRN: "ZZ1", Family: "Partial"}},
		merge(chartscan.Patient{MRN: "100000002"}, "100000005", false))
	var ce *ChangeError
	if !errors.As(err, &ce) || !errors.Is(err, ErrMergeConflict) || ce.Index != 1 {
		t.Errorf("second merge of a merged MRN: %v, want ErrMergeConflict at 1", err)
	}
	if _, ok := patient(t, db, "ZZ1"); ok {
		t.Error("a failed message left its first change applied")
	}
	// Unmerge: refused, audited.
	_, err = apply(EMPIChange{Kind: ChangeUnmerge, Patient: chartscan.Patient{MRN: "NEW1"}, MergedMRN: "100000001"})
	if !errors.Is(err, ErrUnmerge) {
		t.Errorf("unmerge: %v, want ErrUnmerge", err)
	}
	var refused int
	db.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'empi.unmerge' AND outcome = 'refused'`).Scan(&refused)
	if refused != 1 {
		t.Errorf("%d unmerge refusals audited, want 1", refused)
	}
	var merges int
	db.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'empi.merge'`).Scan(&merges)
	if merges != 4 {
		t.Errorf("%d merges audited, want 4", merges)
	}
	if bad, _, err := db.VerifyAudit(ctx); err != nil || bad != 0 {
		t.Errorf("audit chain: bad %d, %v", bad, err)
	}
	// Surname counts follow every change without a recount.
	var drift int
	db.pool.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT lower(family) f, count(*) n FROM patients WHERE family <> '' GROUP BY 1) c
		FULL JOIN surname_counts s ON s.family = c.f WHERE c.n IS DISTINCT FROM s.n`).Scan(&drift)
	if drift != 0 {
		t.Errorf("%d surnames counted wrong after the merges", drift)
	}
}

// TestDocumentsToRefile finds the documents whose review and unmatched pages a new or
// merged patient could resolve, and only those.
func TestDocumentsToRefile(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	importAll(t, db, empi...)
	b, _ := db.CreateBatch(ctx, chartscan.Batch{ID: uuid.NewString()})
	doc := func(status chartscan.PageStatus, ids ...chartscan.Identifier) string {
		d, _, err := db.AddDocument(ctx, b.ID, chartscan.Document{ID: uuid.NewString(), SHA256: uuid.NewString(), FileName: "a.pdf", Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SavePage(ctx, chartscan.Page{DocumentID: d.ID, Number: 1, ImageKey: "k", ImageType: "image/png", Width: 1, Height: 1, DPI: 300}); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveIdentifiers(ctx, d.ID, 1, ids); err != nil {
			t.Fatal(err)
		}
		db.SetPageCount(ctx, d.ID, 1)
		if err := db.SaveFilings(ctx, d.ID, map[int]chartscan.Filing{1: {Status: status}}); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	id := func(k chartscan.IdentifierKind, v string) chartscan.Identifier {
		return chartscan.Identifier{Kind: k, Value: v, Raw: v, Confidence: 0.9}
	}
	byMRN := doc(chartscan.StatusUnmatched, id(chartscan.KindMRN, "100000002"))
	byNameAndDOB := doc(chartscan.StatusReview, id(chartscan.KindName, "SCHMIDT, Anna"), id(chartscan.KindDOB, "1962-03-14"))
	doc(chartscan.StatusReview, id(chartscan.KindName, "SMITH, Someone"))                                        // a name alone
	doc(chartscan.StatusUnmatched, id(chartscan.KindDOB, "1970-01-01"))                                          // a birth date alone
	doc(chartscan.StatusUnmatched, id(chartscan.KindName, "SCHMIDT, Anna"), id(chartscan.KindDOB, "1970-01-01")) // name of one, birth of another
	doc(chartscan.StatusAuto, id(chartscan.KindMRN, "100000002"))                                                // filed: nothing to resolve
	doc(chartscan.StatusUnmatched, id(chartscan.KindMRN, "555555555"))                                           // someone else
	got, err := db.DocumentsToRefile(ctx, []string{"100000002", "100000001"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{byMRN, byNameAndDOB}
	if diff := cmp.Diff(want, got, cmpSorted); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// TestIdentifierSystems: the same MRN from another system is refused, never merged, in
// a bulk import and a live message alike; other identifiers are linked, found by the
// candidate search, kept by the patient that holds them first, and follow a merge.
func TestIdentifierSystems(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	rec := func(mrn, system, family string, ids ...PatientID) Record {
		return Record{Patient: chartscan.Patient{MRN: mrn, Family: family, Sex: "unknown"}, MRNSystem: system, IDs: ids}
	}
	importRecs := func(rs ...Record) ImportStats {
		t.Helper()
		st, err := db.ImportRecords(ctx, func(yield func(Record) error) error {
			for _, r := range rs {
				if err := yield(r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := importRecs(rec("12345", "NORTH", "Northerner", PatientID{"SSA", "999001"}), rec("200", "", "Plain"))
	if st.Inserted != 2 {
		t.Fatalf("first import: %+v", st)
	}
	// 12345 from SOUTH is another patient: refused. A file without systems updates as before.
	st = importRecs(rec("12345", "SOUTH", "Southerner", PatientID{"SSA", "999002"}), rec("200", "", "Plainer"))
	if st.SystemConflicts != 1 || st.Updated != 1 {
		t.Errorf("second import: %+v, want 1 system conflict and 1 update", st)
	}
	if p, _ := patient(t, db, "12345"); p.Family != "Northerner" {
		t.Errorf("the other facility's record overwrote the patient: %+v", p)
	}
	// The MRN stored without a system takes the first one named.
	importRecs(rec("200", "EAST", "Plainer"))
	if _, err := db.ApplyEMPIChanges(ctx, nil, []EMPIChange{{Kind: ChangeUpsert, Patient: chartscan.Patient{MRN: "200", Family: "West"}, MRNSystem: "WEST"}}, "system:test"); !errors.Is(err, ErrSystemConflict) {
		t.Errorf("live upsert of another system's MRN: %v, want ErrSystemConflict", err)
	}
	// An identifier another patient holds stays with it, reported.
	res, err := db.ApplyEMPIChanges(ctx, nil, []EMPIChange{{Kind: ChangeUpsert, Patient: chartscan.Patient{MRN: "300", Family: "Third"},
		IDs: []PatientID{{"SSA", "999001"}, {"PAYER", "P-77"}}}}, "system:test")
	if err != nil || res.IDConflicts != 1 {
		t.Errorf("upsert with a held identifier: %+v, %v; want 1 conflict", res, err)
	}
	found, err := db.Candidates(ctx, chartscan.CandidateQuery{MRNs: []string{"999001"}}, 20)
	if err != nil || !cmp.Equal(mrns(found), []string{"12345"}) {
		t.Errorf("candidates by another identifier: %v, %v", mrns(found), err)
	}
	// A merge carries the merged patient's identifiers to the survivor.
	if _, err := db.ApplyEMPIChanges(ctx, nil, []EMPIChange{{Kind: ChangeMerge, Patient: chartscan.Patient{MRN: "12345"}, MergedMRN: "300"}}, "system:test"); err != nil {
		t.Fatal(err)
	}
	found, _ = db.Candidates(ctx, chartscan.CandidateQuery{MRNs: []string{"P-77"}}, 20)
	if !cmp.Equal(mrns(found), []string{"12345"}) {
		t.Errorf("after the merge, the merged patient's identifier finds %v, want the survivor", mrns(found))
	}
	if again := importRecs(rec("12345", "NORTH", "Northerner", PatientID{"SSA", "999001"})); again.Unchanged != 1 || again.IDConflicts != 0 {
		t.Errorf("re-import: %+v, want unchanged", again)
	}
}
