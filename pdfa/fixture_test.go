package pdfa

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chartscan/chartscan/ocr"
)

func TestMain(m *testing.M) {
	// One thread per Tesseract, as the Makefile and the workers run it: the OCR time the
	// budget test compares with is the production figure.
	os.Setenv("OMP_THREAD_LIMIT", "1")
	os.Exit(m.Run())
}

// chartPage is a page of the synthetic sample as the worker stores it after OCR, with
// what the sample's truth says about it.
type chartPage struct {
	Page
	file    string
	number  int
	mrn     string
	family  string // the patient's family name from the sample EMPI
	docType string
	dos     string
}

var (
	fixtureOnce  sync.Once
	fixturePages []chartPage
	fixtureOCR   time.Duration // total OCR time of fixturePages
	fixtureErr   error
)

// chartPages reads pages 1–2 of chart-001.pdf and page 1 of chart-003.pdf from the
// synthetic sample: split with ocr.Split and read with Tesseract exactly as the worker
// does, keeping the upright image OCR returns when it turned or straightened the page.
// Three pages keep the package's tests to about ten seconds.
func chartPages(tb testing.TB) []chartPage {
	tb.Helper()
	fixtureOnce.Do(func() { fixturePages, fixtureOCR, fixtureErr = readCharts() })
	if fixtureErr != nil {
		tb.Fatalf("reading the sample charts: %v", fixtureErr)
	}
	return fixturePages
}

func readCharts() ([]chartPage, time.Duration, error) {
	truth, err := loadTruth()
	if err != nil {
		return nil, 0, err
	}
	names, err := loadEMPI()
	if err != nil {
		return nil, 0, err
	}
	e := ocr.NewEngine(1, "eng")
	defer e.Close()
	var pages []chartPage
	var spent time.Duration
	want := map[string]map[int]bool{"chart-001.pdf": {1: true, 2: true}, "chart-003.pdf": {1: true}}
	for _, file := range []string{"chart-001.pdf", "chart-003.pdf"} {
		_, err := ocr.Split(context.Background(), "../testdata/charts/"+file, ocr.DefaultLimits, func(p ocr.PageImage) error {
			if !want[file][p.Number] {
				return nil
			}
			start := time.Now()
			res, err := e.Read(context.Background(), p.Data, p.DPI)
			spent += time.Since(start)
			if err != nil {
				return fmt.Errorf("%s page %d: %w", file, p.Number, err)
			}
			pg := Page{Image: p.Data, ImageType: p.Type, Width: res.Width, Height: res.Height, DPI: res.DPI, Words: res.Words}
			if res.Image != nil {
				pg.Image, pg.ImageType = res.Image, "image/png"
			}
			t := truth[file][p.Number]
			pages = append(pages, chartPage{Page: pg, file: file, number: p.Number, mrn: t.MRN,
				family: names[t.MRN], docType: t.DocType, dos: t.DateOfService})
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return pages, spent, nil
}

type truthPage struct {
	Page          int    `json:"page"`
	MRN           string `json:"mrn"`
	DocType       string `json:"doc_type"`
	DateOfService string `json:"date_of_service"`
}

func loadTruth() (map[string]map[int]truthPage, error) {
	b, err := os.ReadFile("../testdata/charts/truth.json")
	if err != nil {
		return nil, err
	}
	var t struct {
		Documents []struct {
			File  string      `json:"file"`
			Pages []truthPage `json:"pages"`
		} `json:"documents"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	out := map[string]map[int]truthPage{}
	for _, d := range t.Documents {
		out[d.File] = map[int]truthPage{}
		for _, p := range d.Pages {
			out[d.File][p.Page] = p
		}
	}
	return out, nil
}

// loadEMPI maps MRN to family name from the sample EMPI.
func loadEMPI() (map[string]string, error) {
	f, err := os.Open("../testdata/empi/sample.csv")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range rows[1:] {
		out[r[0]] = r[1]
	}
	return out, nil
}

func pagesOf(cps []chartPage) []Page {
	out := make([]Page, len(cps))
	for i, c := range cps {
		out[i] = c.Page
	}
	return out
}
