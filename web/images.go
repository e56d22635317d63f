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
		if isGrey(img) {
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
