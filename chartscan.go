package chartscan

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// PageStatus is where a page stands. Every status but StatusPending is final.
type PageStatus string

// Page statuses. The final ones are the values of "status" in the export contract.
const (
	StatusPending   PageStatus = "pending"   // split, not yet filed
	StatusAuto      PageStatus = "auto"      // filed automatically
	StatusReview    PageStatus = "review"    // waiting for a reviewer
	StatusUnmatched PageStatus = "unmatched" // nothing to match on
	StatusConfirmed PageStatus = "confirmed" // filed by a reviewer
	StatusFailed    PageStatus = "failed"    // could not be read; Reason says why
	StatusBlank     PageStatus = "blank"     // an empty page such as a duplex back
	StatusSeparator PageStatus = "separator" // a barcode cover or separator sheet
)

// Final reports whether a page in status s needs no more work from the pipeline.
func (s PageStatus) Final() bool { return s != StatusPending && s != "" }

// DocumentStatus is where an uploaded file stands in the pipeline.
type DocumentStatus string

// Document statuses.
const (
	DocQueued     DocumentStatus = "queued"     // stored, waiting to be split
	DocProcessing DocumentStatus = "processing" // split into pages, pages in flight
	DocDone       DocumentStatus = "done"       // every page final
	DocFailed     DocumentStatus = "failed"     // the file itself could not be read; Reason says why
)

// Final reports whether a document in status s needs no more work from the pipeline.
func (s DocumentStatus) Final() bool { return s == DocDone || s == DocFailed }

// Batch is one upload: a set of files sent together by a clerk or a script.
type Batch struct {
	ID        string
	Label     string
	Urgent    bool   // a patient is waiting: its pages come first in the review queue
	Source    string // "" for an upload; BatchIntake, BatchFolder: the scanners', labelled by prefix or subfolder
	CreatedAt time.Time
}

// Sources of batches filled by the scanners; an upload's is "".
const (
	BatchIntake = "intake" // the scanners' bucket: chartscan intake
	BatchFolder = "folder" // a watched folder: chartscan watch
)

// Document is one uploaded file, identified by the SHA-256 of its content, so the same
// scan uploaded twice is one document.
type Document struct {
	ID          string
	BatchID     string // the batch that first uploaded it
	SHA256      string
	FileName    string
	ContentType string
	Size        int64
	PageCount   int
	Status      DocumentStatus
	Reason      string // for DocFailed: a sentence a clerk understands
	CreatedAt   time.Time
}

// Page is one page of a document: where its image is, what OCR made of it, and how it
// was filed. MRN, Score, DocType and DateOfService are empty until known.
type Page struct {
	DocumentID    string
	Number        int // 1-based
	Status        PageStatus
	Reason        string
	ImageKey      string
	ImageType     string // MIME type of the stored page image
	Width, Height int    // pixels
	DPI           int
	Rotation      int // degrees the page was turned to read it upright
	OCRConfidence float64
	MRN           string
	Score         float64
	DocType       string
	DateOfService string    // YYYY-MM-DD
	WordsKey      string    // where the OCR words are stored, for a page read before they were kept in its row
	HasWords      bool      // OCR words are stored: in the page's row, or at WordsKey
	ReadAt        time.Time // when OCR read it; zero until then
	ExtractedAt   time.Time // when its identifiers were extracted; zero until then
	Identifiers   []Identifier
	Quality       float64 // OCR read quality 0–100 (see Reading)
	LittleText    bool    // few confidently read words: handwriting, a photo
	CoverMRN      string  // the MRN a patient cover sheet's barcode names
	Separator     bool    // a separator sheet: the pages after it are another document
	SplitBefore   bool    // a reviewer split the document here: a new patient starts on this page
	Decided       bool    // a reviewer decided it (confirmed it, or found the patient not in the EMPI): filing keeps it
}

// Reading is what OCR made of a page besides its words: read quality, orientation,
// barcodes, and — when OCR turned, deskewed or rescaled the page — the image it read,
// whose pixels the word boxes refer to.
type Reading struct {
	Text               string
	Confidence         float64 // mean word confidence, 0–100
	LowConfidence      float64 // share of words under 60
	Quality            float64 // 0–100
	LittleText         bool
	Rotation           int     // degrees turned clockwise to read it upright
	RotationConfidence float64 // Tesseract's orientation confidence
	Skew               float64 // degrees
	Barcodes           []Barcode
	CoverMRN           string
	Separator          bool
	Words              []byte // the OCR words ([]Word) as JSON, kept in the page's row
	// ImageKey, when set, is the upright image OCR read; the original stays stored.
	ImageKey, ImageType string
	Width, Height, DPI  int
}

// Barcode is a barcode found on a page, with its symbology and box.
type Barcode struct {
	Format string `json:"format"`
	Text   string `json:"text"`
	Box    Box    `json:"box"`
}

// Box is a rectangle on a page image in pixels, X0,Y0 top-left and X1,Y1 bottom-right.
type Box struct {
	X0 int `json:"x0"`
	Y0 int `json:"y0"`
	X1 int `json:"x1"`
	Y1 int `json:"y1"`
}

// Union returns the smallest box that holds both b and o; a zero box is ignored.
func (b Box) Union(o Box) Box {
	if b == (Box{}) {
		return o
	}
	if o == (Box{}) {
		return b
	}
	return Box{min(b.X0, o.X0), min(b.Y0, o.Y0), max(b.X1, o.X1), max(b.Y1, o.Y1)}
}

// Word is one word read by OCR with its box and Tesseract's confidence (0–100).
// Block and Line number it within the page so lines can be rebuilt.
type Word struct {
	Text  string  `json:"t"`
	Conf  float64 `json:"c"`
	Box   Box     `json:"b"`
	Block int     `json:"k"`
	Line  int     `json:"l"`
}

// LogValue keeps OCR text out of logs.
func (w Word) LogValue() slog.Value { return slog.StringValue("[word]") }

// IdentifierKind names what an Identifier is.
type IdentifierKind string

// Identifier kinds read from a page.
const (
	KindMRN           IdentifierKind = "mrn"
	KindName          IdentifierKind = "name" // Value is "FAMILY, Given"
	KindDOB           IdentifierKind = "dob"  // Value is YYYY-MM-DD
	KindSex           IdentifierKind = "sex"  // Value is "male", "female", "other" or "unknown"
	KindDocType       IdentifierKind = "doc_type"
	KindDateOfService IdentifierKind = "date_of_service" // Value is YYYY-MM-DD
	// KindPageNumber is where the page says it stands in its document: Value "2/3" for
	// "Page 2 of 3", "2" for "Page 2" with no total. It identifies nobody; it tells a
	// continuation page from a page that starts a new document.
	KindPageNumber IdentifierKind = "page_number"
	// KindUnread reports an identifier area whose values could not be read: labels such
	// as "MRN" or a table's header row with no value found for them. Value lists the
	// kinds labelled but unread ("mrn,name"). Such a page is never a silent continuation.
	KindUnread IdentifierKind = "unread"
	// KindContinued reports that the page's heading says it continues a document
	// ("PROGRESS NOTE (continued)", "Nursing notes, cont."): with the same document type
	// as the page before, it ties a page without identifiers to that page.
	KindContinued IdentifierKind = "continued"
)

// Document types read from a page (Value of a KindDocType identifier).
const (
	DocTypeProgressNote     = "progress_note"
	DocTypeDischargeSummary = "discharge_summary"
	DocTypeLab              = "lab"
	DocTypeRadiology        = "radiology"
	DocTypeOperative        = "operative"
	DocTypeConsent          = "consent"
	DocTypeNursing          = "nursing"
)

// Identifier is one fact read from a page: its normalized value, the raw text it came
// from, a confidence in [0,1] and the box on the page image it was read from.
type Identifier struct {
	Kind       IdentifierKind `json:"kind"`
	Value      string         `json:"value"`
	Raw        string         `json:"raw"`
	Confidence float64        `json:"confidence"`
	Box        Box            `json:"box"`
}

// LogValue redacts the value: identifiers are PHI.
func (id Identifier) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", string(id.Kind)), slog.String("value", "[redacted]"))
}

// Patient is one person in the EMPI. BirthDate is YYYY-MM-DD; Sex is "male", "female",
// "other" or "unknown" (FHIR administrative gender).
type Patient struct {
	MRN       string `json:"mrn"`
	Family    string `json:"family"`
	Given     string `json:"given"`
	BirthDate string `json:"birth_date"`
	Sex       string `json:"sex"`
	Street    string `json:"street,omitempty"`
	City      string `json:"city,omitempty"`
	Postcode  string `json:"postcode,omitempty"`
	State     string `json:"state,omitempty"`
	Phone     string `json:"phone,omitempty"`
}

// LogValue redacts the patient: everything but the fact that it is one is PHI.
func (p Patient) LogValue() slog.Value { return slog.StringValue("[patient]") }

// CandidateQuery is what a page or segment offers the EMPI candidate search: its
// blocking keys. Empty fields are not searched.
type CandidateQuery struct {
	MRNs      []string // the MRN read and its OCR-confusion and transposition variants
	Family    string
	Given     string
	BirthDate string // YYYY-MM-DD
	BirthYear int    // when only the year is trusted
}

// Evidence is one field's part in a candidate's score: which field, how well it agreed,
// and the weight that level carries.
type Evidence struct {
	Field  string  `json:"field"`
	Level  string  `json:"level"`
	Weight float64 `json:"weight"`
}

// Candidate is one EMPI patient proposed for a page, with its score and the evidence.
type Candidate struct {
	MRN      string     `json:"mrn"`
	Score    float64    `json:"score"`
	Evidence []Evidence `json:"evidence"`
}

// Filing is the decision for one page: its status, the MRN it is filed to (auto) or
// proposed for (review), the score, the ranked candidates and, for review, why.
type Filing struct {
	Status     PageStatus  `json:"status"`
	MRN        string      `json:"mrn,omitempty"`
	Score      float64     `json:"score"`
	Reason     string      `json:"reason,omitempty"`
	Candidates []Candidate `json:"candidates,omitempty"`
	// QACheck draws an automatic filing for a reviewer's quality check.
	QACheck bool `json:"qa_check,omitempty"`
}

// Error codes. Each maps to one HTTP status in web and one exit code in the CLI.
const (
	EInvalid  = "invalid" // the input is wrong; the message says how
	ENotFound = "not_found"
	EConflict = "conflict"
	EInternal = "internal"
)

// Error is an error whose Message is safe to show a user: it holds no PHI and no
// internal detail. Err, when set, is the cause for logs.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted user-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the user-safe message of the first *Error in err's chain, or a
// generic sentence for anything else, so internal detail never reaches a user.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "an internal error occurred"
}
