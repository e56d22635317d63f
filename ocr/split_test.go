package ocr

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/image/tiff"

	"github.com/chartscan/chartscan"
)

func splitAll(t *testing.T, path string, lim Limits) ([]PageImage, error) {
	t.Helper()
	var pages []PageImage
	n, err := Split(context.Background(), path, lim, func(p PageImage) error {
		p.Data = nil // keep failure output short
		pages = append(pages, p)
		return nil
	})
	if err == nil && n != len(pages) {
		t.Errorf("Split returned %d pages but emitted %d", n, len(pages))
	}
	return pages, err
}

type pageShape struct {
	Number, Width, Height, DPI int
	Type                       string
	Rasterized                 bool
}

func shapes(ps []PageImage) []pageShape {
	var out []pageShape
	for _, p := range ps {
		out = append(out, pageShape{p.Number, p.Width, p.Height, p.DPI, p.Type, p.Rasterized})
	}
	return out
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func grey(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = 0xff
	}
	return g
}

func TestSplitScannedPDFKeepsEachPageImage(t *testing.T) {
	// The synthetic sample: image-only pages of one 1-bit Flate image each, 300 dpi
	// letter, handed over as Deflate TIFFs of the same data.
	got, err := splitAll(t, "../testdata/charts/chart-001.pdf", DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	var want []pageShape
	for i := 1; i <= 4; i++ {
		want = append(want, pageShape{i, 2550, 3300, 300, "image/tiff", false})
	}
	if diff := cmp.Diff(want, shapes(got)); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

// textPDF is a one-page born-digital PDF: text, no image, so it must be rasterized.
func textPDF() []byte {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		"", // content stream, below
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	content := "BT /F1 24 Tf 72 700 Td (Progress note: Medical Record Number 12345) Tj ET"
	objs[3] = fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content)
	return pdfFile("1.4", objs)
}

func TestSplitTextPDFIsRasterized(t *testing.T) {
	got, err := splitAll(t, writeFile(t, "text.pdf", textPDF()), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := []pageShape{{1, 2550, 3300, 300, "image/png", true}}
	if diff := cmp.Diff(want, shapes(got)); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

func TestSplitCapsRasterPixels(t *testing.T) {
	lim := DefaultLimits
	lim.RasterMaxPixels = 2_000_000 // a letter page at 300 dpi is 8.4 million
	got, err := splitAll(t, writeFile(t, "text.pdf", textPDF()), lim)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Width*got[0].Height > lim.RasterMaxPixels || got[0].DPI >= 300 {
		t.Errorf("got %+v, want one page within %d pixels at under 300 dpi", shapes(got), lim.RasterMaxPixels)
	}
}

func TestSplitMultiPageTIFF(t *testing.T) {
	if _, err := exec.LookPath("tiffcp"); err != nil {
		t.Fatalf("tiffcp (libtiff-tools) is needed: %v", err)
	}
	dir := t.TempDir()
	var parts []string
	for i, size := range [][2]int{{850, 1100}, {1100, 850}, {600, 600}} {
		var b bytes.Buffer
		if err := tiff.Encode(&b, grey(size[0], size[1]), &tiff.Options{Compression: tiff.Deflate}); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("%d.tif", i))
		os.WriteFile(p, b.Bytes(), 0o644)
		parts = append(parts, p)
	}
	out := filepath.Join(dir, "multi.tif")
	if b, err := exec.Command("tiffcp", append(parts, out)...).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp: %v %s", err, b)
	}
	got, err := splitAll(t, out, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := []pageShape{
		{1, 850, 1100, 100, "image/tiff", false}, // no resolution in the header: letter width assumed
		{2, 1100, 850, 129, "image/tiff", false},
		{3, 600, 600, 100, "image/tiff", false},
	}
	if diff := cmp.Diff(want, shapes(got)); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

func TestSplitImagesReadTheirResolution(t *testing.T) {
	var pb bytes.Buffer
	png.Encode(&pb, grey(1275, 1650))
	// Add a pHYs chunk of 150 dpi (5906 px/m) after IHDR.
	withDPI := insertPHYs(pb.Bytes(), 5906)
	var jb bytes.Buffer
	jpeg.Encode(&jb, grey(2550, 3300), nil)
	for _, tc := range []struct {
		name string
		data []byte
		want pageShape
	}{
		{"declared.png", withDPI, pageShape{1, 1275, 1650, 150, "image/png", false}},
		{"undeclared.png", pb.Bytes(), pageShape{1, 1275, 1650, 150, "image/png", false}},
		{"plain.jpg", jb.Bytes(), pageShape{1, 2550, 3300, 300, "image/jpeg", false}},
	} {
		got, err := splitAll(t, writeFile(t, tc.name, tc.data), DefaultLimits)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff([]pageShape{tc.want}, shapes(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func insertPHYs(b []byte, ppm uint32) []byte {
	chunk := []byte{0, 0, 0, 9, 'p', 'H', 'Y', 's',
		byte(ppm >> 24), byte(ppm >> 16), byte(ppm >> 8), byte(ppm),
		byte(ppm >> 24), byte(ppm >> 16), byte(ppm >> 8), byte(ppm), 1, 0, 0, 0, 0} // CRC unchecked by readers we use
	at := 8 + 25 // signature + IHDR
	return append(append(append([]byte{}, b[:at]...), chunk...), b[at:]...)
}

func TestSplitRejectsWhatIsNotAScan(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty.pdf", nil, "empty"},
		{"notes.pdf", []byte("just some notes"), "not a PDF"},
		{"cut.pdf", []byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog"), "damaged"},
		{"cut.png", []byte("\x89PNG\r\n\x1a\n\x00\x00"), "damaged"},
	} {
		_, err := splitAll(t, writeFile(t, tc.name, tc.data), DefaultLimits)
		if chartscan.ErrorCode(err) != chartscan.EInvalid || !strings.Contains(chartscan.ErrorMessage(err), tc.want) {
			t.Errorf("%s: err = %v, want an EInvalid error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestSplitRejectsTooManyPixels(t *testing.T) {
	var pb bytes.Buffer
	png.Encode(&pb, grey(3000, 3000))
	lim := DefaultLimits
	lim.MaxPixels = 4_000_000
	_, err := splitAll(t, writeFile(t, "big.png", pb.Bytes()), lim)
	if chartscan.ErrorCode(err) != chartscan.EInvalid || !strings.Contains(err.Error(), "3000×3000") {
		t.Errorf("err = %v, want EInvalid naming the page size", err)
	}
}
