package ocr

import (
	"bytes"
	"compress/zlib"
	"image"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

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
	// synth writes 1-bit Flate rows without a predictor: a Deflate TIFF of the same stream.
	if !ok || kind != KindTIFF || !bytes.Contains(fast, obj.ImageDict.Raw) {
		t.Fatalf("rawScanImage: ok=%v kind=%q, want a TIFF around the PDF's own zlib stream", ok, kind)
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

// flateImage is the stream of a w×h DeviceGray image of bpc bits whose Flate data is z,
// with the decode parameters parms (nil: none).
func flateImage(w, h, bpc int, z []byte, parms types.Dict) *types.StreamDict {
	d := types.NewDict()
	d.InsertName("Type", "XObject")
	d.InsertName("Subtype", "Image")
	d.InsertInt("Width", w)
	d.InsertInt("Height", h)
	d.InsertInt("BitsPerComponent", bpc)
	d.InsertName("ColorSpace", "DeviceGray")
	d.InsertName("Filter", "FlateDecode")
	n := int64(len(z))
	sd := types.NewStreamDict(d, 0, &n, nil, []types.PDFFilter{{Name: "FlateDecode", DecodeParms: parms}})
	sd.Raw = z
	return &sd
}

func zlibOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// TestFlatePagesPassThrough: a grey Flate page with the PNG predictors (what img2pdf and
// many capture programs write) becomes a PNG around the PDF's own zlib stream and decodes
// to the same pixels; a stream that is truncated, has a wrong checksum or a bad filter
// byte is not wrapped (it takes the decoding path, which refuses it, and then pdftoppm).
func TestFlatePagesPassThrough(t *testing.T) {
	const w, h = 37, 23
	want := image.NewGray(image.Rect(0, 0, w, h))
	var rows []byte
	for y := range h {
		rows = append(rows, byte(y%2)) // filters None and Sub, row by row
		prev := byte(0)
		for x := range w {
			v := byte(x*7 + y*3)
			want.Pix[y*w+x] = v
			if y%2 == 1 {
				rows = append(rows, v-prev)
			} else {
				rows = append(rows, v)
			}
			prev = v
		}
	}
	parms := types.NewDict()
	parms.InsertInt("Predictor", 15)
	parms.InsertInt("Columns", w)
	parms.InsertInt("BitsPerComponent", 8)
	z := zlibOf(t, rows)
	b, kind, gw, gh, ok := rawScanImage(flateImage(w, h, 8, z, parms))
	if !ok || kind != KindPNG || gw != w || gh != h || !bytes.Contains(b, z) {
		t.Fatalf("predictor 15: ok=%v kind=%q %dx%d, want a PNG around the stream", ok, kind, gw, gh)
	}
	got, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode the wrapped PNG: %v", err)
	}
	for y := range h {
		for x := range w {
			if g := color.GrayModel.Convert(got.At(x, y)).(color.Gray).Y; g != want.Pix[y*w+x] {
				t.Fatalf("pixel %d,%d = %d, want %d", x, y, g, want.Pix[y*w+x])
			}
		}
	}

	bad := map[string]*types.StreamDict{
		"truncated":       flateImage(w, h, 8, z[:len(z)/2], parms),
		"wrong checksum":  flateImage(w, h, 8, append(append([]byte{}, z[:len(z)-1]...), z[len(z)-1]^1), parms),
		"bad filter byte": flateImage(w, h, 8, zlibOf(t, append([]byte{9}, rows[1:]...)), parms),
		"too few rows":    flateImage(w, h, 8, zlibOf(t, rows[:len(rows)-w-1]), parms),
		"raw deflate":     flateImage(w, h, 8, z[2:len(z)-4], parms),
	}
	for name, sd := range bad {
		if _, _, ok := flateAsIs(sd, w, h, 8); ok {
			t.Errorf("%s: wrapped as it is, want the decoding path", name)
		}
	}
	// Without a predictor, a damaged stream is not a page image at all.
	if _, _, _, _, ok := rawScanImage(flateImage(w, h, 8, zlibOf(t, want.Pix)[:20], nil)); ok {
		t.Error("a truncated stream without a predictor was handed over")
	}
	b, kind, _, _, ok = rawScanImage(flateImage(w, h, 8, zlibOf(t, want.Pix), nil))
	if !ok || kind != KindTIFF {
		t.Fatalf("no predictor: ok=%v kind=%q, want a Deflate TIFF", ok, kind)
	}
	if got, _, err = image.Decode(bytes.NewReader(b)); err != nil || !bytes.Equal(got.(*image.Gray).Pix, want.Pix) {
		t.Fatalf("the Deflate TIFF decodes to other pixels (err %v)", err)
	}
}
