package storage

import (
	"context"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/internal/stacktest"
)

// incomplete are EMPI records as real EMPIs hold them: an unidentified patient, a
// newborn without a given name, a stub with its MRN only, birth dates known to the year
// or the month.
var incomplete = []chartscan.Patient{
	{MRN: "200000001", Family: "Doe", Given: "Jane", BirthDate: "1975", Sex: "female"},
	{MRN: "200000002", Family: "Okafor", BirthDate: "2024-05", Sex: "male"},
	{MRN: "200000003", Given: "Unknown", Sex: "unknown"},
	{MRN: "200000004", Sex: "unknown"},
	{MRN: "200000005", Family: "Roe", Given: "Rich", BirthDate: "1970-01-01", Sex: "male"},
}

func TestImportIncompletePatients(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	if got, want := importAll(t, db, incomplete...), (ImportStats{Read: 5, Inserted: 5}); !cmp.Equal(got, want) {
		t.Errorf("first import %+v, want %+v", got, want)
	}
	for _, want := range incomplete {
		got, err := db.Patient(ctx, want.MRN)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("patient %s as stored (-want +got):\n%s", want.MRN, diff)
		}
	}
	// Nothing is filled in: no family name is '', no birth date NULL in both columns.
	var family string
	var nullDates bool
	db.pool.QueryRow(ctx, `SELECT family, birth_date IS NULL AND birth_partial IS NULL AND birth_year IS NULL
		FROM patients WHERE mrn = '200000004'`).Scan(&family, &nullDates)
	if family != "" || !nullDates {
		t.Errorf("stub stored with family %q, dates all NULL %v", family, nullDates)
	}
	if got, want := importAll(t, db, incomplete...), (ImportStats{Read: 5, Unchanged: 5}); !cmp.Equal(got, want) {
		t.Errorf("second import %+v, want %+v", got, want)
	}
	// The day becomes known: the whole date replaces the partial one.
	known := append([]chartscan.Patient(nil), incomplete...)
	known[0].BirthDate = "1975-03-14"
	if got, want := importAll(t, db, known...), (ImportStats{Read: 5, Updated: 1, Unchanged: 4}); !cmp.Equal(got, want) {
		t.Errorf("import with the whole date %+v, want %+v", got, want)
	}
	if p, _ := db.Patient(ctx, "200000001"); p.BirthDate != "1975-03-14" {
		t.Errorf("birth date after the update %q, want 1975-03-14", p.BirthDate)
	}
	// And back: a partial date replaces the whole one (the EMPI is the system of record).
	if got, want := importAll(t, db, incomplete...), (ImportStats{Read: 5, Updated: 1, Unchanged: 4}); !cmp.Equal(got, want) {
		t.Errorf("import with the partial date again %+v, want %+v", got, want)
	}
	// A partial date gives the blocks their birth year.
	for _, tc := range []struct {
		name string
		q    chartscan.CandidateQuery
		want []string
	}{
		{"phonetic surname and a partial birth year", chartscan.CandidateQuery{Family: "Doh", BirthYear: 1975}, []string{"200000001"}},
		{"trigram name within a year-month's year", chartscan.CandidateQuery{Family: "Okafur", BirthYear: 2024}, []string{"200000002"}},
		{"a whole date finds no partial one", chartscan.CandidateQuery{BirthDate: "1975-03-14"}, nil},
		{"exact mrn of a stub", chartscan.CandidateQuery{MRNs: []string{"200000004"}}, []string{"200000004"}},
	} {
		got, err := db.Candidates(ctx, tc.q, 20)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, mrns(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	// Patients without a family name are no surname of the term frequencies.
	var rows, total int
	db.pool.QueryRow(ctx, `SELECT count(*) FROM surname_counts WHERE family = ''`).Scan(&rows)
	db.pool.QueryRow(ctx, `SELECT value FROM empi_stats WHERE key = 'surnames_total'`).Scan(&total)
	if rows != 0 || total != 3 {
		t.Errorf("surname counts: %d rows for no surname, total %d; want 0 and 3", rows, total)
	}
}

func TestImportRefusesBadBirthDates(t *testing.T) {
	db := openDB(t)
	for _, d := range []string{"1975-3", "75", "1975-13-01", "03/14/1975"} {
		_, err := db.ImportPatients(context.Background(), func(yield func(chartscan.Patient) error) error {
			return yield(chartscan.Patient{MRN: "1", Family: "Doe", BirthDate: d})
		})
		if err == nil {
			t.Errorf("import of birth date %q: no error", d)
		}
	}
	if n, _ := db.PatientCount(context.Background()); n != 0 {
		t.Errorf("%d patients after refused imports, want 0", n)
	}
}

// TestPartialBirthDateMigrationKeepsPatients migrates a database holding patients from
// before partial birth dates: every row keeps its values and its birth year.
func TestPartialBirthDateMigrationKeepsPatients(t *testing.T) {
	ctx := context.Background()
	env := stacktest.New(t)
	pool, err := pgxpool.New(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	sub, _ := fs.Sub(migrations, "migrations")
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub, goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	const before = 8 // the last migration before partial birth dates (00009)
	if _, err := p.UpTo(ctx, before); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO patients (mrn, family, given, birth_date, sex) VALUES
			('1', 'Doe', 'Jane', '1962-03-14', 'female'), ('2', 'Unknown', 'Patient', NULL, 'unknown')`); err != nil {
		t.Fatal(err)
	}
	db := &DB{pool: pool}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	type row struct {
		MRN, Family, Given, Birth string
		Year                      *int
	}
	rows, err := pool.Query(ctx, `SELECT mrn, family, given, `+birthDateSQL+`, birth_year FROM patients p ORDER BY mrn`)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.MRN, &r.Family, &r.Given, &r.Birth, &r.Year); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	year := 1962
	want := []row{{"1", "Doe", "Jane", "1962-03-14", &year}, {"2", "Unknown", "Patient", "", nil}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patients after the migration (-want +got):\n%s", diff)
	}
	// The blocks on the birth year still have their indexes.
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'patients'
		AND indexname IN ('patients_phonetic_year', 'patients_year_family_initial_trgm', 'patients_year_given_initial_trgm')`).Scan(&n)
	if n != 3 {
		t.Errorf("%d of the 3 birth-year indexes after the migrations", n)
	}
}
