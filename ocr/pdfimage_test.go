package ocr

import (
	"bytes"
	"image"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/chartscan/chartscan/synth"
)

// TestRawScanImageMatchesPdfcpuRendering checks the fast path pixel for pixel against
// pdfcpu's general rendering of the same image.
func TestRawScanImageMatchesPdfcpuRendering(t *testing.T) {
	f, err := os.Open("../testdata/charts/chart-003.pdf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conf := model.NewDefaultConfiguration()
	conf.Cmd = model.EXTRACTIMAGES
	pctx, err := api.ReadValidateAndOptimize(f, conf)
	if err != nil {
		t.Fatal(err)
	}
	objs := pdfcpu.ImageObjNrs(pctx, 1)
	obj := pctx.Optimize.ImageObjects[objs[0]]
	fast, kind, w, h, ok := rawScanImage(obj.ImageDict)
	if !ok || kind != KindPNG {
		t.Fatalf("rawScanImage: ok=%v kind=%q, want a PNG", ok, kind)
	}
	slow, err := pdfcpu.ExtractImage(pctx, obj.ImageDict, false, obj.ResourceNames[0], objs[0], false)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := io.ReadAll(slow)
	a, _, err := image.Decode(bytes.NewReader(fast))
	if err != nil {
		t.Fatalf("decode fast PNG: %v", err)
	}
	b, _, err := image.Decode(bytes.NewReader(sb))
	if err != nil {
		t.Fatal(err)
	}
	if a.Bounds() != b.Bounds() || a.Bounds().Dx() != w || a.Bounds().Dy() != h {
		t.Fatalf("bounds %v vs %v (want %dx%d)", a.Bounds(), b.Bounds(), w, h)
	}
	diff := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if color.GrayModel.Convert(a.At(x, y)) != color.GrayModel.Convert(b.At(x, y)) {
				diff++
			}
		}
	}
	if diff != 0 {
		t.Errorf("%d pixels differ between the fast path and pdfcpu's rendering", diff)
	}
}

func TestSplitGreyJPEGPDFKeepsTheJPEG(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 1275, 1650))
	for i := range g.Pix {
		g.Pix[i] = byte(i)
	}
	var pdf bytes.Buffer
	if err := synth.WritePDF(&pdf, []*image.Gray{g, g}, 150, synth.GreyJPEG); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "grey.pdf")
	os.WriteFile(path, pdf.Bytes(), 0o644)
	got, err := splitAll(t, path, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if p.Type != "image/jpeg" || p.DPI != 150 || p.Rasterized || p.Width != 1275 {
			t.Errorf("page %d: %+v, want the JPEG as stored at 150 dpi", p.Number, shapes([]PageImage{p}))
		}
	}
	if len(got) != 2 {
		t.Errorf("%d pages, want 2", len(got))
	}
}
