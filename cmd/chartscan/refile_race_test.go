package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/worker"
)

// slowStore is the PostgreSQL index with a re-filing slowed down between reading the
// pages and saving their filing — the window in which a reviewer's decision makes the
// filing stale — and a hook to hold one re-filing there.
type slowStore struct {
	*storage.DB
	delay time.Duration
	mu    sync.Mutex
	hold  func() // run once, after the next read of the pages
}

func (s *slowStore) MatchPages(ctx context.Context, documentID string) ([]chartscan.Page, error) {
	pages, err := s.DB.MatchPages(ctx, documentID)
	s.mu.Lock()
	hold := s.hold
	s.hold = nil
	s.mu.Unlock()
	if hold != nil {
		hold()
	}
	if s.delay > 0 {
		time.Sleep(rand.N(s.delay))
	}
	return pages, err
}

// raceFixture is one document of groups × 3 pages against a small EMPI: in each group a
// poor scan with the patient's identifiers ("Page 1 of 3", to review), a poor scan
// without ("Page 2 of 3", to review) and a clean page without ("Page 3 of 3", filed
// automatically with the first). Reviewers have pages to decide, and each decision
// changes how the pages after it file.
type raceFixture struct {
	s        *stack
	db       *storage.DB
	w        *worker.Worker
	store    *slowStore
	batch    string
	doc      string
	patients []chartscan.Patient
	groups   int
}

// luhnMRN returns a nine-digit MRN ending in its Luhn check digit.
func luhnMRN(body int) string {
	b := fmt.Sprintf("%08d", body)
	sum := 0
	for i := len(b) - 1; i >= 0; i-- {
		d := int(b[i] - '0')
		if (len(b)-1-i)%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return b + fmt.Sprint((10-sum%10)%10)
}

func newRaceFixture(t *testing.T, groups int) *raceFixture {
	t.Helper()
	ctx := context.Background()
	s := newStack(t)
	families := []string{"Abernathy", "Brennan", "Castellano", "Dubois", "Eriksen", "Fujimoto", "Gallagher", "Haddad", "Ibarra", "Jankowski"}
	givens := []string{"Ruth", "Oscar", "Mirela", "Tobias", "Agnes", "Kenji", "Siobhan", "Nadim", "Lucia", "Piotr"}
	var csv strings.Builder
	csv.WriteString("mrn,family,given,birth_date,sex\n")
	f := &raceFixture{s: s, groups: groups}
	for i := range families {
		p := chartscan.Patient{MRN: luhnMRN(4100000 + 37*i), Family: families[i], Given: givens[i],
			BirthDate: fmt.Sprintf("19%02d-%02d-%02d", 40+5*i, 1+i, 3+2*i), Sex: []string{"female", "male"}[i%2]}
		f.patients = append(f.patients, p)
		fmt.Fprintf(&csv, "%s,%s,%s,%s,%s\n", p.MRN, p.Family, p.Given, p.BirthDate, p.Sex)
	}
	s.importEMPI(csv.String())

	db := s.openDB(ctx)
	f.db = db
	f.batch = uuid.NewString()
	if _, err := db.CreateBatch(ctx, chartscan.Batch{ID: f.batch}); err != nil {
		t.Fatal(err)
	}
	f.store = &slowStore{DB: db}
	var err error
	f.w, err = worker.New(worker.Config{Store: f.store, Model: indexer.DefaultModel(),
		Pages: worker.PagePolicy{QualityFloor: 50, QARate: 1}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.newDocument(t)
	return f
}

// newDocument stores a fresh document in the fixture's batch, as the pipeline leaves
// it, and makes it the one the fixture works on.
func (f *raceFixture) newDocument(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	db := f.db
	d, _, err := db.AddDocument(ctx, f.batch, chartscan.Document{ID: uuid.NewString(), SHA256: uuid.NewString(),
		FileName: "race.pdf", ContentType: "application/pdf", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.doc = d.ID
	sure := func(kind chartscan.IdentifierKind, v string) chartscan.Identifier {
		return chartscan.Identifier{Kind: kind, Value: v, Raw: v, Confidence: 0.96, Box: chartscan.Box{X1: 10, Y1: 10}}
	}
	for g := range f.groups {
		p := f.patients[g%(len(f.patients)-2)] // the last two are nobody's: reviewers assign them
		for k := 1; k <= 3; k++ {
			n := 3*g + k
			if err := db.SavePage(ctx, chartscan.Page{DocumentID: f.doc, Number: n, ImageKey: "k", ImageType: "image/png", Width: 1, Height: 1, DPI: 300}); err != nil {
				t.Fatal(err)
			}
			quality := 30.0 // a poor scan: to review whatever it says
			if k == 3 {
				quality = 92
			}
			if err := db.SaveOCR(ctx, f.doc, n, chartscan.Reading{Text: "SYNTHETIC TEST RECORD", Confidence: quality, Quality: quality}); err != nil {
				t.Fatal(err)
			}
			ids := []chartscan.Identifier{sure(chartscan.KindPageNumber, fmt.Sprintf("%d/3", k))}
			if k == 1 {
				ids = append(ids, sure(chartscan.KindMRN, p.MRN), sure(chartscan.KindName, strings.ToUpper(p.Family)+", "+p.Given),
					sure(chartscan.KindDOB, p.BirthDate))
			}
			if err := db.SaveIdentifiers(ctx, f.doc, n, ids); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.SetPageCount(ctx, f.doc, 3*f.groups); err != nil {
		t.Fatal(err)
	}
	// The pipeline is through: the document is done, and filed once.
	if err := db.SaveFilings(ctx, f.doc, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Refile(ctx, f.doc, false); err != nil {
		t.Fatal(err)
	}
	for g := range f.groups {
		want := []chartscan.PageStatus{chartscan.StatusReview, chartscan.StatusReview, chartscan.StatusAuto}
		for k := 1; k <= 3; k++ {
			if st := f.page(t, 3*g+k); st.Status != want[k-1] {
				t.Fatalf("fixture: page %d is %s (%s), want %s", 3*g+k, st.Status, st.Reason, want[k-1])
			}
		}
	}
}

// pageState is what a page holds: its filing and the candidates stored with it.
type pageState struct {
	Status     chartscan.PageStatus
	MRN        string
	Reason     string
	Version    int
	Candidates []string // MRN:score, in rank order
}

func (f *raceFixture) page(t *testing.T, n int) pageState {
	t.Helper()
	d, err := f.db.PageDetail(context.Background(), f.doc, n)
	if err != nil {
		t.Fatal(err)
	}
	st := pageState{Status: d.Status, MRN: d.MRN, Reason: d.Reason, Version: d.Version}
	for _, c := range d.Candidates {
		st.Candidates = append(st.Candidates, fmt.Sprintf("%s:%.2f", c.MRN, c.Score))
	}
	return st
}

// checkFresh checks that every page not decided by a reviewer is filed exactly as a
// filing computed now, from the pages as they are, would file it: no filing computed
// before a decision outlived it.
func (f *raceFixture) checkFresh(t *testing.T, when string) {
	t.Helper()
	ctx := context.Background()
	freqs := indexer.SurnameShares{}
	pages, filed, err := f.w.Replay(ctx, f.doc, indexer.DefaultModel(), func(e indexer.Evidence) ([]chartscan.Patient, error) {
		return f.w.Lookup(ctx, e, freqs)
	}, freqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pages {
		if p.Decided {
			continue
		}
		got := f.page(t, p.Number)
		var want []string
		for _, c := range filed[i].Candidates {
			want = append(want, fmt.Sprintf("%s:%.2f", c.MRN, c.Score))
		}
		if got.Status != filed[i].Status || got.MRN != filed[i].MRN || !slices.Equal(got.Candidates, want) {
			t.Errorf("%s: page %d is %s %q with candidates %v; the pages as they are file it %s %q with %v",
				when, p.Number, got.Status, got.MRN, got.Candidates, filed[i].Status, filed[i].MRN, want)
		}
	}
}

// staleRefile starts a re-filing, holds it after it has read the pages, runs decide, and
// lets the re-filing save: the filing it computed is stale.
func (f *raceFixture) staleRefile(t *testing.T, decide func()) {
	t.Helper()
	read, release := make(chan struct{}), make(chan struct{})
	f.store.mu.Lock()
	f.store.hold = func() { close(read); <-release }
	f.store.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := f.w.Refile(context.Background(), f.doc, false)
		done <- err
	}()
	<-read
	decide()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the re-filing racing the decision: %v", err)
	}
}

func (f *raceFixture) decide(t *testing.T, n int, action, mrn string) storage.Decided {
	t.Helper()
	d, err := f.db.Decide(context.Background(), storage.Decision{PageKey: storage.PageKey{DocumentID: f.doc, Page: n},
		Version: f.page(t, n).Version, Action: action, MRN: mrn, Actor: "rita"})
	if err != nil {
		t.Fatalf("%s page %d: %v", action, n, err)
	}
	return d
}

// TestRefileRacingReviewersKeepsEveryDecision: a re-filing computed before a reviewer's
// decision (confirm to another patient, not in the EMPI, a split) and saved after it
// must change nothing — it is computed again. First each kind of decision once, with the
// re-filing held in the window; then reviewers, re-filings (Worker.Refile and `refile
// --batch`) and quality checks all at once on one document, checked at rest after every
// round: every decided page keeps its decision and its candidates, and every other
// page is filed as the pages as they are now file it.
func TestRefileRacingReviewersKeepsEveryDecision(t *testing.T) {
	f := newRaceFixture(t, 6)

	t.Run("one decision inside a re-filing", func(t *testing.T) {
		other := f.patients[len(f.patients)-1]
		cases := []struct {
			name   string
			page   int // the page decided
			action string
			mrn    string
		}{
			{"confirmed to another patient", 1, storage.ActionAssign, other.MRN}, // page 3 now follows the reviewer's patient
			{"not in the EMPI", 4, storage.ActionNotInEMPI, ""},                  // pages 5–6 lose the segment's patient
			{"split", 8, storage.ActionSplit, ""},                                // page 9 starts the new, unidentified patient
		}
		for _, c := range cases {
			var decided pageState
			f.staleRefile(t, func() {
				f.decide(t, c.page, c.action, c.mrn)
				decided = f.page(t, c.page)
			})
			if got := f.page(t, c.page); c.action != storage.ActionSplit && !cmpState(got, decided) {
				t.Errorf("%s: decided page %d was %+v after the decision, %+v after the re-filing", c.name, c.page, decided, got)
			}
			f.checkFresh(t, c.name)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		f.store.delay = 30 * time.Millisecond
		type decision struct {
			action string
			state  pageState
		}
		var mu sync.Mutex
		decided := map[int]decision{}
		var decisions, conflicts, refiles, cliRefiles atomic.Int64
		ctx := context.Background()
		for round := 1; round <= 6; round++ {
			f.newDocument(t) // each round races on a document of its own
			mu.Lock()
			clear(decided)
			mu.Unlock()
			var stop atomic.Bool
			var wg sync.WaitGroup
			for r := range 3 { // reviewers, each re-filing after its decision as the server does
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						var review []int
						for n := 1; n <= 3*f.groups; n++ {
							if p, err := f.db.PageDetail(ctx, f.doc, n); err == nil && p.Status == chartscan.StatusReview {
								review = append(review, n)
							}
						}
						if len(review) == 0 {
							return
						}
						n := review[rand.N(len(review))]
						pd, err := f.db.PageDetail(ctx, f.doc, n)
						if err != nil {
							t.Error(err)
							return
						}
						action := []string{storage.ActionConfirm, storage.ActionAssign, storage.ActionNotInEMPI,
							storage.ActionSplit, storage.ActionContinuation}[rand.N(5)]
						mrn := f.patients[rand.N(len(f.patients))].MRN
						if action == storage.ActionConfirm && len(pd.Candidates) > 0 {
							mrn = pd.Candidates[0].MRN
						}
						_, err = f.db.Decide(ctx, storage.Decision{PageKey: storage.PageKey{DocumentID: f.doc, Page: n},
							Version: pd.Version, Action: action, MRN: mrn, Actor: fmt.Sprintf("reviewer-%d", r)})
						switch chartscan.ErrorCode(err) {
						case chartscan.EConflict, chartscan.EInvalid: // another reviewer was first; no previous patient
							conflicts.Add(1)
							continue
						case chartscan.EInternal:
							if err != nil {
								t.Errorf("decide: %v", err)
								return
							}
						}
						decisions.Add(1)
						if action != storage.ActionSplit {
							mu.Lock()
							decided[n] = decision{action, f.page(t, n)}
							mu.Unlock()
						}
						if _, err := f.w.Refile(ctx, f.doc, false); err != nil {
							t.Errorf("re-filing after a decision: %v", err)
						}
					}
				}()
			}
			for range 2 { // re-filings in a loop, as `refile --batch` after an EMPI import
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						if _, err := f.w.Refile(ctx, f.doc, false); err != nil {
							t.Errorf("re-filing: %v", err)
							return
						}
						refiles.Add(1)
					}
				}()
			}
			wg.Add(1)
			go func() { // the command line's re-filing of the whole batch
				defer wg.Done()
				for !stop.Load() {
					if _, errs, code := f.s.run("refile", "--batch", f.batch); code != 0 {
						t.Errorf("refile --batch: exit %d\n%s", code, errs)
						return
					}
					cliRefiles.Add(1)
				}
			}()
			wg.Add(1)
			go func() { // quality checks that find a page misfiled: back to review
				defer wg.Done()
				for !stop.Load() {
					time.Sleep(50 * time.Millisecond)
					k, ok, err := f.db.NextQA(ctx, nil)
					if err != nil || !ok {
						continue
					}
					p := f.page(t, k.Page)
					if err := f.db.CheckQA(ctx, storage.QACheck{PageKey: k, MRN: p.MRN, Outcome: storage.QAWrong, Actor: "quinn"}); err == nil {
						if _, err := f.w.Refile(ctx, f.doc, false); err != nil {
							t.Errorf("re-filing after a quality check: %v", err)
						}
					}
				}
			}()
			time.Sleep(3 * time.Second)
			stop.Store(true)
			wg.Wait()
			mu.Lock()
			for n, d := range decided {
				if got := f.page(t, n); !cmpState(got, d.state) {
					t.Errorf("round %d: page %d decided (%s) as %+v is now %+v", round, n, d.action, d.state, got)
				}
			}
			mu.Unlock()
			f.checkFresh(t, fmt.Sprintf("round %d", round))
			if t.Failed() {
				break
			}
		}
		t.Logf("%d decisions (%d refused), %d re-filings, %d refile --batch runs", decisions.Load(), conflicts.Load(), refiles.Load(), cliRefiles.Load())
		if decisions.Load() < 20 || refiles.Load() < 20 {
			t.Errorf("too little happened to race: %d decisions, %d re-filings", decisions.Load(), refiles.Load())
		}
	})
}

// cmpState compares what a decision fixed: the filing and the candidates the reviewer
// saw (not the reason or the version, which a quality check may touch).
func cmpState(a, b pageState) bool {
	return a.Status == b.Status && a.MRN == b.MRN && slices.Equal(a.Candidates, b.Candidates)
}
