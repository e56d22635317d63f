package web

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // decoders for whatever a scanner produced
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/tiff"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// browserImage reports whether every browser shows images of this type as they are.
func browserImage(mime string) bool {
	return mime == "image/png" || mime == "image/jpeg"
}

// imageVersion names a page image's content: its object, type and size. Pages are split
// from their scan the same way every time, so a page keeps its version across re-runs
// and decisions; a review item's image URL carries it (?v=), and only such a URL may be
// cached (issue 13, item 5).
func imageVersion(d storage.PageDetail) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%dx%d", d.ImageKey, d.ImageType, d.Width, d.Height))
	return hex.EncodeToString(h[:8])
}

// pageImageURL is the versioned URL of a page's image, scaled to width when width > 0.
func pageImageURL(d storage.PageDetail, width int) string {
	u := fmt.Sprintf("/api/v1/pages/%s/%d/image?v=%s", d.DocumentID, d.Number, imageVersion(d))
	if width > 0 {
		u += "&width=" + strconv.Itoa(width)
	}
	return u
}

// displayWidth is the widest a page image is sent for the screen: the review desk, the
// quality checks and the page view show a rendition of at most this width (a 300 dpi
// letter page is 2550 pixels wide, 8.4 million pixels the browser decodes and scales
// down on every item; at 1600 it is 3.3 million, still more than the sheet's width on a
// large screen). The full image stays a link away (the "Full size" link: zoom, print).
const displayWidth = 1600

// displayImageURL is the versioned URL of a page's image as shown on screen.
func displayImageURL(d storage.PageDetail) string {
	if d.Width > displayWidth {
		return pageImageURL(d, displayWidth)
	}
	return pageImageURL(d, 0)
}

// imageCacheFor is how long a browser may keep a page image fetched by its versioned URL:
// no longer than a session lasts. Signing out clears it (Clear-Site-Data).
const imageCacheFor = sessionLength

// servePageImage writes a page image. PNG and JPEG go out as stored; TIFF (and anything
// else a browser cannot show) is converted to PNG on the fly. With width > 0 the image is
// scaled down to that width, for thumbnails. PHI: only the browser of the reviewer may
// keep it (cacheable: private, for the session), no shared cache; by default nothing may.
func (s *Server) servePageImage(w http.ResponseWriter, r *http.Request, d storage.PageDetail, width int, cacheable bool) error {
	rc, err := s.cfg.Objects.Get(r.Context(), d.ImageKey)
	if err != nil {
		return err
	}
	defer rc.Close()
	if cacheable {
		w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d, immutable", int(imageCacheFor/time.Second)))
		w.Header().Set("Vary", "Cookie, Authorization")
	} else {
		w.Header().Set("Cache-Control", "private, no-store")
	}
	w = s.rolling(w, r)
	if width == 0 && browserImage(d.ImageType) {
		w.Header().Set("Content-Type", d.ImageType)
		_, err := io.Copy(w, rc)
		if err != nil {
			panic(http.ErrAbortHandler) // headers are out; only cutting the stream is left
		}
		return nil
	}
	// The header first: a small file can claim a huge image (a 16-bit PNG of 800 MB),
	// refused before a pixel is decoded. What the header read is replayed for Decode.
	br := bufio.NewReaderSize(rc, 1<<16)
	var head bytes.Buffer
	cfg, _, err := image.DecodeConfig(io.TeeReader(br, &head))
	if err != nil {
		return &chartscan.Error{Code: chartscan.EInternal, Message: "the page image cannot be shown", Err: err}
	}
	if err := checkDecodable(cfg, s.limits.DecodeBytes); err != nil {
		return err
	}
	img, _, err := image.Decode(io.MultiReader(&head, br))
	if err != nil {
		return &chartscan.Error{Code: chartscan.EInternal, Message: "the page image cannot be shown", Err: err}
	}
	if b := img.Bounds(); width > 0 && width < b.Dx() {
		h := max(1, b.Dy()*width/b.Dx())
		r := image.Rect(0, 0, width, h)
		// Scans are mostly grey; keeping them grey keeps thumbnails a third the size.
		// A grey page is averaged over each target pixel's area: sharp text, and fast
		// enough for the display rendition (tens of milliseconds for a 300 dpi page,
		// where the general kernels take most of a second).
		if g, ok := img.(*image.Gray); ok {
			img = shrinkGray(g, width, h)
		} else if isGrey(img) {
			dst := image.NewGray(r)
			draw.CatmullRom.Scale(dst, r, img, b, draw.Src, nil)
			img = dst
		} else {
			dst := image.NewRGBA(r)
			draw.CatmullRom.Scale(dst, r, img, b, draw.Src, nil)
			img = dst
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
	return nil
}

func isGrey(img image.Image) bool {
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		return true
	}
	return img.ColorModel() == color.GrayModel || img.ColorModel() == color.Gray16Model
}

// shrinkGray scales a grey image down to w×h (no larger than it) by area averaging:
// each target pixel is the mean of the source pixels it covers, parts of pixels weighed
// by the part covered. Exact integer arithmetic, one pass over the source.
func shrinkGray(src *image.Gray, w, h int) *image.Gray {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	w, h = min(max(1, w), sw), min(max(1, h), sh)
	dst := image.NewGray(image.Rect(0, 0, w, h))
	// Source pixel j spans [j*n, (j+1)*n) and target pixel i spans [i*sn, (i+1)*sn), in
	// units of 1/(n*sn) of the row: a source pixel falls within one target pixel or
	// across the border of two (n ≤ sn). split gives the target and the part in it.
	split := func(n, sn int) (at, part []int) {
		at, part = make([]int, sn), make([]int, sn)
		for j := range sn {
			i := j * n / sn
			at[j], part[j] = i, min((i+1)*sn, (j+1)*n)-j*n
		}
		return at, part
	}
	colAt, colPart := split(w, sw)
	rowAt, rowPart := split(h, sh)
	row := make([]uint64, w+1) // a source row filtered across, in units of 1/sw
	// The target row being summed and the one after it, in units of 1/(sw*sh).
	cur, next := make([]uint64, w+1), make([]uint64, w+1)
	norm := uint64(sw) * uint64(sh)
	flush := func(y int, a []uint64) {
		out := dst.Pix[y*dst.Stride : y*dst.Stride+w]
		for x := range out {
			out[x] = uint8((a[x] + norm/2) / norm)
		}
	}
	y := 0
	for j := range sh {
		o := src.PixOffset(b.Min.X, b.Min.Y+j)
		line := src.Pix[o : o+sw]
		clear(row)
		for k, v := range line {
			p := uint64(colPart[k])
			row[colAt[k]] += uint64(v) * p
			row[colAt[k]+1] += uint64(v) * (uint64(w) - p)
		}
		if rowAt[j] != y { // the target row before is complete
			flush(y, cur)
			cur, next = next, cur
			clear(next)
			y = rowAt[j]
		}
		p := uint64(rowPart[j])
		for x := range w {
			cur[x] += row[x] * p
			next[x] += row[x] * (uint64(h) - p)
		}
	}
	flush(y, cur)
	return dst
}
