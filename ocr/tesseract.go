package ocr

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/otiai10/gosseract/v2"

	"github.com/chartscan/chartscan"
)

// Engine reads page images with Tesseract. It keeps one long-lived client per slot — a
// Tesseract instance is costly to start and must never be used by two goroutines at
// once — and hands a free one to each Read.
type Engine struct {
	clients chan *gosseract.Client
	lang    string
}

// NewEngine returns an engine with slots clients for language lang ("eng"). Clients
// start lazily, on the first Read that needs one. Set OMP_THREAD_LIMIT=1 in the
// environment before the process starts so each instance uses one thread: concurrency
// comes from slots.
func NewEngine(slots int, lang string) *Engine {
	e := &Engine{clients: make(chan *gosseract.Client, slots), lang: lang}
	for range slots {
		e.clients <- nil
	}
	return e
}

// Close frees every client. Reads must have finished.
func (e *Engine) Close() {
	for range cap(e.clients) {
		if c := <-e.clients; c != nil {
			c.Close()
		}
	}
}

// Result is what Tesseract read on a page.
type Result struct {
	Words      []chartscan.Word
	Text       string  // the words as lines, in reading order
	Confidence float64 // mean word confidence, 0–100; 0 when no words
}

// Read runs Tesseract on an encoded page image (PNG, JPEG, TIFF) of the given resolution.
func (e *Engine) Read(ctx context.Context, img []byte, dpi int) (res Result, err error) {
	var c *gosseract.Client
	select {
	case c = <-e.clients:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	defer func() {
		if r := recover(); r != nil {
			// A client that panicked mid-call may be in any state: replace it.
			c.Close()
			c = nil
			err = fmt.Errorf("tesseract: panic: %v", r)
		}
		e.clients <- c
	}()
	if c == nil {
		c = gosseract.NewClient()
		if err := c.SetLanguage(e.lang); err != nil {
			return res, fmt.Errorf("tesseract language: %w", err)
		}
		// Mode 1 (automatic segmentation with orientation and script detection) reads
		// pages fed sideways or upside down, which mode 3 turns into gibberish.
		c.SetVariable("tessedit_pageseg_mode", strconv.Itoa(int(gosseract.PSM_AUTO_OSD)))
	}
	if err := c.SetImageFromBytes(img); err != nil {
		return res, fmt.Errorf("tesseract image: %w", err)
	}
	c.SetVariable("user_defined_dpi", strconv.Itoa(dpi))
	boxes, err := c.GetBoundingBoxesVerbose()
	if err != nil {
		return res, fmt.Errorf("tesseract: %w", err)
	}
	return resultFromBoxes(boxes), nil
}

func resultFromBoxes(boxes []gosseract.BoundingBox) Result {
	var res Result
	sum := 0.0
	for _, b := range boxes {
		t := strings.TrimSpace(b.Word)
		if t == "" {
			continue
		}
		res.Words = append(res.Words, chartscan.Word{
			Text:  t,
			Conf:  b.Confidence,
			Box:   chartscan.Box{X0: b.Box.Min.X, Y0: b.Box.Min.Y, X1: b.Box.Max.X, Y1: b.Box.Max.Y},
			Block: b.BlockNum,
			// Tesseract numbers lines within a paragraph; a page-wide line key keeps
			// lines of different paragraphs apart.
			Line: b.ParNum*1000 + b.LineNum,
		})
		sum += b.Confidence
	}
	if len(res.Words) > 0 {
		res.Confidence = sum / float64(len(res.Words))
	}
	res.Text = Text(res.Words)
	return res
}

// Text lays words out as lines in Tesseract's reading order: blocks separated by a blank
// line, words of a line by spaces.
func Text(words []chartscan.Word) string {
	ws := make([]chartscan.Word, len(words))
	copy(ws, words)
	sort.SliceStable(ws, func(i, j int) bool {
		if ws[i].Block != ws[j].Block {
			return ws[i].Block < ws[j].Block
		}
		return ws[i].Line < ws[j].Line
	})
	var sb strings.Builder
	for i, w := range ws {
		if i > 0 {
			switch {
			case ws[i-1].Block != w.Block:
				sb.WriteString("\n\n")
			case ws[i-1].Line != w.Line:
				sb.WriteByte('\n')
			default:
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(w.Text)
	}
	return sb.String()
}
