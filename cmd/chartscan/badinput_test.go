package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// zeroPagePDF is a well-formed PDF whose page tree is empty.
func zeroPagePDF() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	off1 := b.Len()
	b.WriteString("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	off2 := b.Len()
	b.WriteString("2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n")
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 3\n0000000000 65535 f \n%010d 00000 n \n%010d 00000 n \n", off1, off2)
	fmt.Fprintf(&b, "trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", xref)
	return b.Bytes()
}

func TestBadInputFailsItsDocumentAndTheBatchCompletes(t *testing.T) {
	// A low pixel limit so a modest image is "too large" without a huge test file.
	s := newStack(t, "CHARTSCAN_MAX_PIXELS=20000000")
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good, err := os.ReadFile("../../testdata/charts/chart-003.pdf")
	if err != nil {
		t.Fatal(err)
	}
	write("good.pdf", good)
	write("empty.pdf", nil)
	write("letter.pdf", []byte("Dear records department, this is a letter, not a PDF.\n"))
	other, _ := os.ReadFile("../../testdata/charts/chart-001.pdf")
	write("truncated.pdf", other[:len(other)*2/5])
	write("nopages.pdf", zeroPagePDF())

	conf := model.NewAESConfiguration("user-secret", "owner-secret", 256)
	var enc bytes.Buffer
	if err := api.Encrypt(bytes.NewReader(other), &enc, conf); err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	write("encrypted.pdf", enc.Bytes())

	big := image.NewGray(image.Rect(0, 0, 5000, 5000)) // 25 million pixels
	for i := range big.Pix {
		big.Pix[i] = 0xff
	}
	big.Set(10, 10, color.Black)
	var pb bytes.Buffer
	png.Encode(&pb, big)
	write("huge.png", pb.Bytes())

	out, errs, code := s.run("ingest", "--wait", dir)
	if code == 0 {
		t.Errorf("ingest --wait exit 0 with failed files; want non-zero\n%s", errs)
	}
	batch := strings.TrimSpace(out)
	rows := s.export("--batch", batch)
	byFile := map[string][]exportRow{}
	for _, r := range rows {
		byFile[r.File] = append(byFile[r.File], r)
	}
	if g := byFile["good.pdf"]; len(g) != 2 || g[0].Status != "auto" {
		t.Errorf("good.pdf: %+v, want 2 pages, the first auto-filed", g)
	}
	status := s.mustRun("status", batch)
	for file, reason := range map[string]string{
		"empty.pdf":     "the file is empty",
		"letter.pdf":    "not a PDF, TIFF, PNG or JPEG",
		"truncated.pdf": "damaged or incomplete",
		"nopages.pdf":   "has no pages",
		"encrypted.pdf": "password-protected",
		"huge.png":      "more than the limit of 20 million",
	} {
		r := byFile[file]
		if len(r) != 1 || r[0].Status != "failed" {
			t.Errorf("%s: export %+v, want one failed row", file, r)
		}
		if !strings.Contains(status, file+": ") || !strings.Contains(status, reason) {
			t.Errorf("status does not give %s its reason %q:\n%s", file, reason, status)
		}
	}
	if strings.Contains(s.logs.String(), "panic") {
		t.Errorf("a handler panicked:\n%s", s.logs.String())
	}
}
