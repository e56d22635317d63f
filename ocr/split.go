package ocr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // image.DecodeConfig of page images
	_ "image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	_ "golang.org/x/image/tiff" // image.DecodeConfig of TIFF pages

	"github.com/chartscan/chartscan"
)

// Limits bound the work a page may make.
type Limits struct {
	MaxPixels       int // a page image above this many pixels fails its document
	RasterDPI       int // resolution pages are rasterized at (300)
	RasterMaxPixels int // a rasterized page is scaled down to at most this many pixels
	MaxPages        int // a file of more pages fails its document before any is stored (0: no limit)
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxPixels: 100_000_000, RasterDPI: 300, RasterMaxPixels: 25_000_000, MaxPages: 2000}

// PageImage is one page of a scan as an encoded image ready for Tesseract.
type PageImage struct {
	Number        int // 1-based
	Data          []byte
	Type          string // MIME type of Data
	Ext           string // file extension for Data, without a dot
	Width, Height int
	DPI           int
	Rasterized    bool // drawn by pdftoppm rather than taken from the PDF
}

func invalid(format string, args ...any) error {
	return chartscan.Errorf(chartscan.EInvalid, format, args...)
}

// Split reads the scan at path and calls emit with each page in order. It returns the
// number of pages. A file chartscan cannot read fails with a *chartscan.Error (EInvalid)
// whose message a clerk understands.
func Split(ctx context.Context, path string, lim Limits, emit func(PageImage) error) (n int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, 1024)
	m, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, err
	}
	head = head[:m]
	if m == 0 {
		return 0, invalid("the file is empty (0 bytes)")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	switch k := Sniff(head); k {
	case KindPDF:
		return splitPDF(ctx, f, path, lim, emit)
	case KindTIFF:
		return splitTIFF(ctx, path, lim, emit)
	case KindPNG, KindJPEG:
		b, err := io.ReadAll(f)
		if err != nil {
			return 0, err
		}
		p, err := pageFromImage(1, k, b, lim)
		if err != nil {
			return 0, err
		}
		return 1, emit(p)
	default:
		return 0, invalid("the file is not a PDF, TIFF, PNG or JPEG scan")
	}
}

func pageFromImage(n int, k Kind, b []byte, lim Limits) (PageImage, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return PageImage{}, invalid("page %d: the image is damaged or in a format chartscan cannot read", n)
	}
	if err := checkPixels(n, cfg.Width, cfg.Height, lim); err != nil {
		return PageImage{}, err
	}
	dpi := declaredDPI(k, b)
	if dpi == 0 {
		dpi = guessDPI(cfg.Width)
	}
	ext := map[Kind]string{KindPNG: "png", KindJPEG: "jpg", KindTIFF: "tif"}[k]
	return PageImage{Number: n, Data: b, Type: k.MIMEType(), Ext: ext, Width: cfg.Width, Height: cfg.Height, DPI: dpi}, nil
}

func checkPixels(n, w, h int, lim Limits) error {
	if w <= 0 || h <= 0 {
		return invalid("page %d: the image has no pixels", n)
	}
	if lim.MaxPixels > 0 && w*h > lim.MaxPixels {
		return invalid("page %d is %d×%d pixels, more than the limit of %d million; rescan it at a lower resolution",
			n, w, h, lim.MaxPixels/1_000_000)
	}
	return nil
}

// checkPages refuses a file of more pages than one upload may hold, before any is stored
// or read: one clerk's 50,000-page file would otherwise hold every worker for a day.
func checkPages(n int, lim Limits) error {
	if lim.MaxPages > 0 && n > lim.MaxPages {
		return invalid("the file has %d pages, more than the limit of %d for one file; split it into files of at most %d pages and upload those",
			n, lim.MaxPages, lim.MaxPages)
	}
	return nil
}

// pdfReadError turns pdfcpu's reasons into a sentence for a clerk.
func pdfReadError(err error) error {
	msg := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, pdfcpu.ErrWrongPassword), strings.Contains(msg, "password"), strings.Contains(msg, "encrypt"):
		return invalid("the PDF is password-protected; save an unprotected copy and upload that")
	default:
		return invalid("the PDF is damaged or incomplete and cannot be read; rescan or re-export it")
	}
}

var textOperator = regexp.MustCompile(`(^|\s)BT(\s|$)`)

// A PDF of more pages or bytes than these is split by lazyPDF, a page at a time, so that
// the memory a split takes does not grow with the file; smaller ones by pdfcpu's reader,
// which validates the whole file first.
var (
	lazySplitMinPages       = 50
	lazySplitMinBytes int64 = 16 << 20
)

func splitPDF(ctx context.Context, f *os.File, path string, lim Limits, emit func(PageImage) error) (n int, err error) {
	if n, done, err := splitPDFLazily(ctx, f, path, lim, emit); done {
		return n, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	// pdfcpu reports some malformed input by panicking deep inside its parser.
	defer func() {
		if r := recover(); r != nil {
			err = invalid("the PDF is damaged or incomplete and cannot be read; rescan or re-export it")
		}
	}()
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	// Optimizing indexes each page's images, which ExtractPageImages looks them up in.
	conf.Cmd = model.EXTRACTIMAGES
	pctx, err := api.ReadValidateAndOptimize(f, conf)
	if err != nil {
		return 0, pdfReadError(err)
	}
	if pctx.PageCount == 0 {
		return 0, invalid("the PDF has no pages")
	}
	if err := checkPages(pctx.PageCount, lim); err != nil {
		return 0, err
	}
	dims, err := pctx.XRefTable.PageDims()
	if err != nil {
		return 0, pdfReadError(err)
	}
	for i := 1; i <= pctx.PageCount; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		p, ok := scanImage(pctx, i, dims[i-1].Width, dims[i-1].Height, lim)
		if !ok {
			p, err = rasterize(ctx, path, i, dims[i-1].Width, dims[i-1].Height, lim)
			if err != nil {
				return 0, err
			}
		}
		if err := checkPixels(i, p.Width, p.Height, lim); err != nil {
			return 0, err
		}
		if err := emit(p); err != nil {
			return 0, err
		}
	}
	return pctx.PageCount, nil
}

// splitPDFLazily splits a long PDF page by page (see lazyPDF). done false means it did
// not start — a short file, or one whose structure lazyPDF does not read — and the file
// is left to pdfcpu's reader; nothing has been emitted then. Once it has started, a page
// whose objects are not as expected is drawn by pdftoppm, like any page that is not a
// plain scan, so no page is skipped or split twice.
func splitPDFLazily(ctx context.Context, f *os.File, path string, lim Limits, emit func(PageImage) error) (n int, done bool, err error) {
	defer func() {
		// pdfcpu's parser reports some malformed input by panicking.
		if r := recover(); r != nil {
			if done {
				err = invalid("the PDF is damaged or incomplete and cannot be read; rescan or re-export it")
			} else {
				n, err = 0, nil
			}
		}
	}()
	lp, err := openLazyPDF(f)
	if err != nil {
		return 0, false, nil
	}
	pages, err := lp.pages()
	if err != nil || len(pages) == 0 || (len(pages) < lazySplitMinPages && lp.size < lazySplitMinBytes) {
		return 0, false, nil
	}
	done = true
	if err := checkPages(len(pages), lim); err != nil {
		return 0, true, err
	}
	for i, page := range pages {
		if err := ctx.Err(); err != nil {
			return 0, true, err
		}
		n := i + 1
		w, h := page.size()
		p, ok := lp.scanPage(n, page, w, h, lim)
		if !ok {
			if p, err = rasterize(ctx, path, n, w, h, lim); err != nil {
				return 0, true, err
			}
		}
		if err := checkPixels(n, p.Width, p.Height, lim); err != nil {
			return 0, true, err
		}
		if err := emit(p); err != nil {
			return 0, true, err
		}
	}
	return len(pages), true, nil
}

// scanPage is the page's scan image, or false when it is not a plain scan or its
// objects are not as expected (pdfcpu's parser panics on some malformed input).
func (lp *lazyPDF) scanPage(n int, page lazyPage, w, h float64, lim Limits) (p PageImage, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	b, k, scan, err := lp.scanImage(page)
	if err != nil || !scan {
		return p, false
	}
	return scanPage(n, b, k, w, h, lim)
}

// scanImage returns the page's scan image as stored in the PDF when the page is exactly
// one image that covers it (what a scanner writes) in a codec Tesseract reads. Anything
// else — text, vector art, several images, an image codec pdfcpu cannot hand over — is
// left to rasterize, so no page is ever skipped.
func scanImage(pctx *model.Context, n int, wPt, hPt float64, lim Limits) (p PageImage, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if content, err := pdfcpu.ExtractPageContent(pctx, n); err == nil && content != nil {
		b, _ := io.ReadAll(content)
		if textOperator.Match(b) {
			return p, false
		}
	}
	objs := pdfcpu.ImageObjNrs(pctx, n)
	if len(objs) != 1 || pctx.Optimize.ImageObjects[objs[0]] == nil {
		return p, false
	}
	obj := pctx.Optimize.ImageObjects[objs[0]]
	var b []byte
	var k Kind
	if data, kind, _, _, ok := rawScanImage(obj.ImageDict); ok {
		b, k = data, kind
	} else {
		img, err := pdfcpu.ExtractImage(pctx, obj.ImageDict, false, obj.ResourceNames[n-1], objs[0], false)
		if err != nil || img == nil || img.IsImgMask || img.HasSMask || img.HasImgMask {
			return p, false
		}
		switch img.FileType {
		case "jpg":
			k = KindJPEG
		case "png":
			k = KindPNG
		case "tif":
			k = KindTIFF
		default:
			return p, false
		}
		if b, err = io.ReadAll(img); err != nil || len(b) == 0 {
			return p, false
		}
	}
	return scanPage(n, b, k, wPt, hPt, lim)
}

// scanPage makes the page image of page n from the encoded image b of kind k when the
// image covers the page of wPt×hPt points as a scan does.
func scanPage(n int, b []byte, k Kind, wPt, hPt float64, lim Limits) (p PageImage, ok bool) {
	// pdfcpu leaves the model's dimensions unset; the encoded image has them.
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return p, false
	}
	w, h := cfg.Width, cfg.Height
	if lim.MaxPixels > 0 && w*h > lim.MaxPixels {
		return p, false // rasterize at a capped resolution instead
	}
	// The image must cover the page at one resolution in both directions (either way
	// round, for a page with /Rotate); a small image on a larger page is not a scan.
	wIn, hIn := wPt/72, hPt/72
	dx, dy := float64(w)/wIn, float64(h)/hIn
	if math.Abs(dx-dy) > 0.05*math.Max(dx, dy) {
		dx, dy = float64(w)/hIn, float64(h)/wIn
		if math.Abs(dx-dy) > 0.05*math.Max(dx, dy) {
			return p, false
		}
	}
	dpi := int(math.Round(dx))
	if dpi < 50 || dpi > 1200 {
		return p, false
	}
	ext := map[Kind]string{KindPNG: "png", KindJPEG: "jpg", KindTIFF: "tif"}[k]
	return PageImage{Number: n, Data: b, Type: k.MIMEType(), Ext: ext, Width: w, Height: h, DPI: dpi}, true
}

// rasterize draws one PDF page with poppler's pdftoppm as a grey PNG at the configured
// resolution, lowered so that the page stays within RasterMaxPixels (a phone-photo page
// of 56×42 inches would otherwise be 16800×12600 pixels and take 2.4 GB).
func rasterize(ctx context.Context, path string, n int, wPt, hPt float64, lim Limits) (PageImage, error) {
	dpi := float64(lim.RasterDPI)
	if px := (wPt / 72 * dpi) * (hPt / 72 * dpi); lim.RasterMaxPixels > 0 && px > float64(lim.RasterMaxPixels) {
		dpi *= math.Sqrt(float64(lim.RasterMaxPixels) / px)
	}
	dpi = math.Max(math.Floor(dpi), 10)
	dir, err := os.MkdirTemp("", "chartscan-raster-")
	if err != nil {
		return PageImage{}, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "page")
	cmd := exec.CommandContext(ctx, "pdftoppm", "-q", "-r", fmt.Sprint(dpi), "-f", fmt.Sprint(n), "-l", fmt.Sprint(n),
		"-singlefile", "-gray", "-png", path, out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return PageImage{}, ctx.Err()
		}
		if errors.Is(err, exec.ErrNotFound) {
			return PageImage{}, fmt.Errorf("pdftoppm is not installed (poppler-utils): %w", err)
		}
		return PageImage{}, invalid("page %d of the PDF cannot be drawn; the file may be damaged", n)
	}
	b, err := os.ReadFile(out + ".png")
	if err != nil {
		return PageImage{}, fmt.Errorf("rasterize page %d: %w", n, err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return PageImage{}, fmt.Errorf("rasterize page %d: %w", n, err)
	}
	return PageImage{Number: n, Data: b, Type: "image/png", Ext: "png", Width: cfg.Width, Height: cfg.Height,
		DPI: int(dpi), Rasterized: true}, nil
}

// splitTIFF splits a multi-page TIFF into single-page TIFFs with libtiff's tiffsplit,
// which keeps each page's compression (G3/G4, LZW, JPEG …) as the scanner wrote it.
func splitTIFF(ctx context.Context, path string, lim Limits, emit func(PageImage) error) (int, error) {
	dir, err := os.MkdirTemp("", "chartscan-tiff-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, "tiffsplit", path, filepath.Join(dir, "p"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if errors.Is(err, exec.ErrNotFound) {
			return 0, fmt.Errorf("tiffsplit is not installed (libtiff-tools): %w", err)
		}
		return 0, invalid("the TIFF is damaged or incomplete and cannot be read")
	}
	files, err := filepath.Glob(filepath.Join(dir, "p*.tif"))
	if err != nil {
		return 0, err
	}
	sort.Strings(files) // tiffsplit names pages paaa, paab, … in order
	if len(files) == 0 {
		return 0, invalid("the TIFF has no pages")
	}
	if err := checkPages(len(files), lim); err != nil {
		return 0, err
	}
	for i, fn := range files {
		b, err := os.ReadFile(fn)
		if err != nil {
			return 0, err
		}
		p, err := tiffPage(i+1, b, lim)
		if err != nil {
			return 0, err
		}
		if err := emit(p); err != nil {
			return 0, err
		}
	}
	return len(files), nil
}

// tiffPage makes a page of a single-page TIFF. Go's TIFF decoder does not read every
// compression scanners write (old-style JPEG, some G3), but Tesseract's Leptonica does,
// so the size comes from the header when Go cannot decode it.
func tiffPage(n int, b []byte, lim Limits) (PageImage, error) {
	if p, err := pageFromImage(n, KindTIFF, b, lim); err == nil {
		return p, nil
	} else if chartscan.ErrorCode(err) == chartscan.EInvalid && strings.Contains(err.Error(), "pixels") {
		return p, err
	}
	w, h := tiffSize(b)
	if err := checkPixels(n, w, h, lim); err != nil {
		return PageImage{}, err
	}
	dpi := declaredDPI(KindTIFF, b)
	if dpi == 0 {
		dpi = guessDPI(w)
	}
	return PageImage{Number: n, Data: b, Type: "image/tiff", Ext: "tif", Width: w, Height: h, DPI: dpi}, nil
}
