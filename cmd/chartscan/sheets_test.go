package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"

	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/synth"
)

const letterW, letterH = 2550, 3300 // US letter at 300 dpi

func whitePage() *image.Gray {
	g := image.NewGray(image.Rect(0, 0, letterW, letterH))
	draw.Draw(g, g.Bounds(), image.White, image.Point{}, draw.Src)
	return g
}

// coverPage prints a cover sheet for p with `chartscan coversheet`, as a clerk would,
// and returns it as a page image.
func coverPage(t *testing.T, s *stack, p synth.Person) *image.Gray {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cover.pdf")
	if got := strings.TrimSpace(s.mustRun("coversheet", "--mrn", p.EMPI.MRN, "--doc-type", "progress_note", "-o", path)); got != path {
		t.Fatalf("coversheet printed %q, want the file name %s", got, path)
	}
	var out *image.Gray
	_, err := ocr.Split(context.Background(), path, ocr.DefaultLimits, func(pi ocr.PageImage) error {
		img, _, err := image.Decode(bytes.NewReader(pi.Data))
		if err != nil {
			return err
		}
		out = image.NewGray(img.Bounds())
		draw.Draw(out, out.Bounds(), img, img.Bounds().Min, draw.Src)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// separatorPage is a sheet with a Code 128 "PATCHT" barcode, as separator sheets carry.
func separatorPage(t *testing.T) *image.Gray {
	t.Helper()
	m, err := oned.NewCode128Writer().Encode("PATCHT", gozxing.BarcodeFormat_CODE_128, 1200, 300, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := whitePage()
	for y := 0; y < m.GetHeight(); y++ {
		for x := 0; x < m.GetWidth(); x++ {
			if m.Get(x, y) {
				g.SetGray(675+x, 1500+y, color.Gray{})
			}
		}
	}
	return g
}

// duplexBack is an empty page with the specks a scanner picks up.
func duplexBack() *image.Gray {
	g := whitePage()
	r := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		g.SetGray(r.IntN(letterW), r.IntN(letterH), color.Gray{})
	}
	return g
}

func noisePage() *image.Gray {
	g := whitePage()
	r := rand.New(rand.NewPCG(3, 4))
	for i := range g.Pix {
		if r.IntN(2) == 0 {
			g.Pix[i] = 0
		}
	}
	return g
}

// TestCoverSheetsSeparatorBlankAndNoise ingests one upload holding two patients behind
// cover sheets, a separator sheet, a third patient, a duplex back and a page of noise.
func TestCoverSheetsSeparatorBlankAndNoise(t *testing.T) {
	s := newStack(t)
	f, err := os.Open("../../testdata/identities/splink/fake_1000.csv")
	if err != nil {
		t.Fatal(err)
	}
	people, err := synth.LoadSplink(f, 11, synth.FirstRecord)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := people[3], people[4], people[5]
	dir := t.TempDir()
	var empi bytes.Buffer
	w := csv.NewWriter(&empi)
	w.Write(synth.EMPIHeader)
	for _, p := range []synth.Person{a, b, c} {
		e := p.EMPI
		w.Write([]string{e.MRN, e.Family, e.Given, e.BirthDate, e.Sex, e.Street, e.City, e.Postcode, e.State, e.Phone})
	}
	w.Flush()
	os.WriteFile(filepath.Join(dir, "empi.csv"), empi.Bytes(), 0o644)
	s.mustRun("records", "import", filepath.Join(dir, "empi.csv"))

	cont := func(p *synth.Person, n int) *image.Gray {
		return synth.RenderPage(synth.PageSpec{Person: p, DocType: "progress_note", DateOfService: "2024-02-03",
			Continuation: true, PageNumber: n, Seed: int64(n)}, 300)
	}
	pages := []*image.Gray{
		coverPage(t, s, a), cont(&a, 1), cont(&a, 2), duplexBack(),
		coverPage(t, s, b), cont(&b, 1),
		separatorPage(t),
		synth.RenderPage(synth.PageSpec{Person: &c, DocType: "lab", DateOfService: "2024-02-04", PageNumber: 1, Seed: 9}, 300),
		noisePage(),
	}
	var pdf bytes.Buffer
	if err := synth.WritePDF(&pdf, pages, 300, synth.Bilevel); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "box.pdf"), pdf.Bytes(), 0o644)

	s.startWorker()
	out, errs, code := s.run("ingest", "--wait", filepath.Join(dir, "box.pdf"))
	if code != 0 {
		t.Fatalf("ingest: exit %d\n%s", code, errs)
	}
	rows := s.export("--batch", strings.TrimSpace(out))
	type want struct {
		status, mrn string
		part        int
	}
	wants := []want{
		{"separator", "", 1}, {"auto", a.EMPI.MRN, 1}, {"auto", a.EMPI.MRN, 1}, {"blank", "", 1},
		{"separator", "", 1}, {"auto", b.EMPI.MRN, 1},
		{"separator", "", 1},
		{"auto", c.EMPI.MRN, 2}, {"review", "", 2},
	}
	if len(rows) != len(wants) {
		t.Fatalf("export has %d pages, want %d", len(rows), len(wants))
	}
	for i, r := range rows {
		w := wants[i]
		mrn := ""
		if r.MRN != nil && r.Status != "review" {
			mrn = *r.MRN
		}
		if r.Status != w.status || mrn != w.mrn || r.Part != w.part {
			t.Errorf("page %d: %s %q part %d; want %s %q part %d", r.Page, r.Status, mrn, r.Part, w.status, w.mrn, w.part)
		}
	}
	// The noise page is in review because it is a poor scan, not for anything it "said".
	conn, err := pgx.Connect(context.Background(), s.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var reason string
	conn.QueryRow(context.Background(), `SELECT reason FROM pages WHERE document_id = $1 AND page_no = 9`, rows[8].DocumentID).Scan(&reason)
	if !strings.HasPrefix(reason, "poor scan") {
		t.Errorf("noise page review reason %q, want poor scan", reason)
	}
	status := s.mustRun("status", strings.TrimSpace(out))
	if !strings.Contains(status, "blank") {
		t.Errorf("the batch summary does not show the blank page to the clerk:\n%s", status)
	}
}
