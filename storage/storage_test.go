package storage

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/internal/stacktest"
)

func openDB(t *testing.T) *DB {
	t.Helper()
	env := stacktest.New(t)
	db, err := Open(context.Background(), env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func importAll(t *testing.T, db *DB, ps ...chartscan.Patient) ImportStats {
	t.Helper()
	st, err := db.ImportPatients(context.Background(), func(yield func(chartscan.Patient) error) error {
		for _, p := range ps {
			if err := yield(p); err != nil {
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

var empi = []chartscan.Patient{
	{MRN: "100000001", Family: "Schmidt", Given: "Anna", BirthDate: "1962-03-14", Sex: "female"},
	{MRN: "100000002", Family: "Smith", Given: "John", BirthDate: "1970-01-01", Sex: "male"},
	{MRN: "100000003", Family: "Smith", Given: "Jane", BirthDate: "1980-05-05", Sex: "female"},
	{MRN: "100000004", Family: "Okonkwo", Given: "Chidi", BirthDate: "1962-03-14", Sex: "male"},
	{MRN: "100000005", Family: "Smyth", Given: "Jon", BirthDate: "1970-06-30", Sex: "male"},
	{MRN: "100000006", Family: "Unknown", Given: "Patient", Sex: "unknown"}, // no birth date
}

func mrns(ps []chartscan.Patient) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.MRN)
	}
	slices.Sort(out)
	return out
}

func TestImportPatientsCountsAndIsIdempotent(t *testing.T) {
	db := openDB(t)
	if got, want := importAll(t, db, empi...), (ImportStats{Read: 6, Inserted: 6}); !cmp.Equal(got, want) {
		t.Errorf("first import %+v, want %+v", got, want)
	}
	changed := slices.Clone(empi)
	changed[1].Phone = "555-0100"
	if got, want := importAll(t, db, changed...), (ImportStats{Read: 6, Updated: 1, Unchanged: 5}); !cmp.Equal(got, want) {
		t.Errorf("second import %+v, want %+v", got, want)
	}
	repeated := append(slices.Clone(changed), changed[0])
	if got, want := importAll(t, db, repeated...), (ImportStats{Read: 7, Unchanged: 6, Repeated: 1}); !cmp.Equal(got, want) {
		t.Errorf("import with a repeated MRN %+v, want %+v", got, want)
	}
	_, shares, err := db.CandidatesWithShares(context.Background(), chartscan.CandidateQuery{MRNs: []string{"100000002", "100000004"}}, 20)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"smith": 2.0 / 6, "okonkwo": 1.0 / 6}
	if diff := cmp.Diff(want, shares); diff != "" {
		t.Errorf("surname shares (-want +got):\n%s", diff)
	}
}

func TestCandidatesUnionOfBlocks(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		q    chartscan.CandidateQuery
		want []string
	}{
		{"exact mrn", chartscan.CandidateQuery{MRNs: []string{"100000004"}}, []string{"100000004"}},
		{"mrn variants", chartscan.CandidateQuery{MRNs: []string{"100000007", "100000001"}}, []string{"100000001"}},
		{"phonetic surname and birth year", chartscan.CandidateQuery{Family: "Smyth", BirthYear: 1970},
			[]string{"100000002", "100000005"}},
		{"exact birth date", chartscan.CandidateQuery{BirthDate: "1962-03-14"}, []string{"100000001", "100000004"}},
		{"trigram name within the birth year", chartscan.CandidateQuery{Family: "Okomkwo", Given: "Chidi", BirthYear: 1962}, []string{"100000004"}},
		{"trigram name, wrong year", chartscan.CandidateQuery{Family: "Okomkwo", Given: "Chidi", BirthYear: 1990}, nil},
		// The name blocks search the names sharing an initial: one misread initial is found
		// by the other; both misread, the page goes to review without this candidate.
		{"trigram name, family initial misread", chartscan.CandidateQuery{Family: "0konkwo", Given: "Chidi", BirthYear: 1962}, []string{"100000004"}},
		{"trigram name, given initial misread", chartscan.CandidateQuery{Family: "Okonkwo", Given: "Ghidi", BirthYear: 1962}, []string{"100000004"}},
		{"trigram name, both initials misread", chartscan.CandidateQuery{Family: "0konkwo", Given: "Ghidi", BirthYear: 1962}, nil},
		{"trigram name, names swapped", chartscan.CandidateQuery{Family: "Chidi", Given: "Okonkwo", BirthYear: 1962}, []string{"100000004"}},
		{"nothing", chartscan.CandidateQuery{Family: "Zzyzx", BirthDate: "1901-01-01"}, nil},
	} {
		got, err := db.Candidates(ctx, tc.q, 20)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, mrns(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestMergeMovesPagesAndAudits(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	b, _ := db.CreateBatch(ctx, chartscan.Batch{ID: uuid.NewString()})
	doc, _, err := db.AddDocument(ctx, b.ID, chartscan.Document{ID: uuid.NewString(), SHA256: "abc", FileName: "a.pdf", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		if err := db.SavePage(ctx, chartscan.Page{DocumentID: doc.ID, Number: n, ImageKey: "k", ImageType: "image/png", Width: 1, Height: 1, DPI: 300}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{
		1: {Status: chartscan.StatusAuto, MRN: "100000003", Score: 30},
		2: {Status: chartscan.StatusAuto, MRN: "100000002", Score: 30},
	}); err != nil {
		t.Fatal(err)
	}
	moved, err := db.MergePatients(ctx, "100000002", "100000003", "system:test")
	if err != nil {
		t.Fatal(err)
	}
	if moved != 1 {
		t.Errorf("moved %d pages, want 1", moved)
	}
	for n := 1; n <= 2; n++ {
		var got string
		db.pool.QueryRow(ctx, `SELECT mrn FROM pages WHERE document_id = $1 AND page_no = $2`, doc.ID, n).Scan(&got)
		if got != "100000002" {
			t.Errorf("page %d filed to %s after the merge, want the survivor", n, got)
		}
	}
	// The merged-away MRN now finds the survivor.
	got, err := db.Candidates(ctx, chartscan.CandidateQuery{MRNs: []string{"100000003"}}, 20)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"100000002"}, mrns(got)); diff != "" {
		t.Errorf("candidates for the alias (-want +got):\n%s", diff)
	}
	if _, err := db.MergePatients(ctx, "999", "100000001", "system:test"); chartscan.ErrorCode(err) != chartscan.ENotFound {
		t.Errorf("merge into a missing survivor: %v, want not found", err)
	}
	bad, n, err := db.VerifyAudit(ctx)
	if err != nil || bad != 0 || n != 1 {
		t.Errorf("VerifyAudit = %d, %d, %v; want a chain of 1 that holds", bad, n, err)
	}
}

func TestVerifyAuditCatchesTampering(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	for i, action := range []string{"page.view", "page.view", "filing.confirm"} {
		if err := db.Audit(ctx, AuditEntry{Actor: "reviewer1", Action: action, Object: "page:x/" + string(rune('1'+i)), Outcome: "ok",
			Detail: map[string]any{"n": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if bad, n, err := db.VerifyAudit(ctx); err != nil || bad != 0 || n != 3 {
		t.Fatalf("untouched chain: bad=%d n=%d err=%v", bad, n, err)
	}
	var second int64
	db.pool.QueryRow(ctx, `SELECT id FROM audit_log ORDER BY id OFFSET 1 LIMIT 1`).Scan(&second)
	if _, err := db.pool.Exec(ctx, `UPDATE audit_log SET actor = 'someone-else' WHERE id = $1`, second); err != nil {
		t.Fatal(err)
	}
	if bad, _, err := db.VerifyAudit(ctx); err != nil || bad != second {
		t.Errorf("after editing entry %d VerifyAudit says %d (%v)", second, bad, err)
	}
}

// TestPageWordsInTheRow: a page's words are kept in its row (no MinIO object); a page
// read before that (migration 00020) keeps the key of its words' object, which is what
// PageWords then gives; either way the page has words, and a page not read has none.
func TestPageWordsInTheRow(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	b, _ := db.CreateBatch(ctx, chartscan.Batch{ID: uuid.NewString()})
	doc, _, err := db.AddDocument(ctx, b.ID, chartscan.Document{ID: uuid.NewString(), SHA256: uuid.NewString(), FileName: "a.pdf", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		if err := db.SavePage(ctx, chartscan.Page{DocumentID: doc.ID, Number: n, ImageKey: "k", ImageType: "image/png", Width: 1, Height: 1, DPI: 300}); err != nil {
			t.Fatal(err)
		}
	}
	words := []byte(`[{"text":"MRN","box":{"x0":1,"y0":2,"x1":3,"y1":4}}]`)
	if err := db.SaveOCR(ctx, doc.ID, 1, chartscan.Reading{Text: "MRN", Words: words}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `UPDATE pages SET words_key = 'words/old/2.json', ocr_at = now() WHERE document_id = $1 AND page_no = 2`, doc.ID); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]struct {
		words string
		key   string
		has   bool
	}{1: {string(words), "", true}, 2: {"", "words/old/2.json", true}, 3: {"", "", false}} {
		got, key, err := db.PageWords(ctx, doc.ID, n)
		if err != nil {
			t.Fatal(err)
		}
		p, err := db.Page(ctx, doc.ID, n)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want.words || key != want.key || p.HasWords != want.has {
			t.Errorf("page %d: words %q key %q has %v, want %q %q %v", n, got, key, p.HasWords, want.words, want.key, want.has)
		}
	}
	if _, _, err := db.PageWords(ctx, doc.ID, 9); err == nil {
		t.Error("the words of a page that does not exist: no error")
	}
}
