// Package assemble makes a patient document (storage.PatientDocument) into what is sent
// to the EHR (issue 14): its searchable PDF/A built by pdfa.Write from the stored upright
// page images and OCR words — no second OCR pass — and the deliver.Document carrying it,
// with the patient as the EMPI holds them. `chartscan export --format fhir|hl7` uses it,
// and so can the delivery stage.
//
// Everything built from a version is the same every time: the PDF's dates and the
// message times are the version's creation time, and the document number is the
// version's id and number, so exporting again writes the same bytes.
package assemble

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/deliver"
	"github.com/chartscan/chartscan/pdfa"
	"github.com/chartscan/chartscan/storage"
)

// Store is what assembling reads from PostgreSQL.
type Store interface {
	Page(ctx context.Context, documentID string, n int) (chartscan.Page, error)
	PageWords(ctx context.Context, documentID string, n int) (words []byte, key string, err error)
	PatientDocument(ctx context.Context, id string, version int) (storage.PatientDocument, error)
	DocumentPatient(ctx context.Context, mrn string) (chartscan.Patient, string, error)
}

// Objects is what assembling reads from MinIO.
type Objects interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// Builder assembles patient documents for one facility.
type Builder struct {
	Store   Store
	Objects Objects
	// Facility is the sender; its MRNSystem is the facility's MRN system as stored and
	// as HL7 names it (CHARTSCAN_MRN_SYSTEM: an assigning authority, or a URI).
	Facility deliver.Facility
	// MRNSystemURI is the facility's MRN system as a FHIR identifier.system (a URI, or
	// an OID as urn:oid:…); FHIR says who issued an MRN only that way.
	MRNSystemURI string
}

// PDF builds the searchable PDF/A of a patient document version: its pages in order,
// each the upright image OCR read with the words read on it.
func (b *Builder) PDF(ctx context.Context, pd storage.PatientDocument) ([]byte, error) {
	pages := make([]pdfa.Page, 0, len(pd.Pages))
	for _, n := range pd.Pages {
		p, err := b.Store.Page(ctx, pd.DocumentID, n)
		if err != nil {
			return nil, err
		}
		if !p.HasWords {
			return nil, chartscan.Errorf(chartscan.EInvalid, "page %d of document %s was never read: no words for its text layer", n, pd.DocumentID)
		}
		img, err := b.get(ctx, p.ImageKey)
		if err != nil {
			return nil, err
		}
		raw, key, err := b.Store.PageWords(ctx, pd.DocumentID, n)
		if err != nil {
			return nil, err
		}
		if raw == nil && key != "" { // read before the words were kept in the row
			if raw, err = b.get(ctx, key); err != nil {
				return nil, err
			}
		}
		var words []chartscan.Word
		if err := json.Unmarshal(raw, &words); err != nil {
			return nil, fmt.Errorf("words of page %d of document %s: %w", n, pd.DocumentID, err)
		}
		pages = append(pages, pdfa.Page{Image: img, ImageType: p.ImageType, Width: p.Width, Height: p.Height, DPI: p.DPI, Words: words})
	}
	var out bytes.Buffer
	meta := pdfa.Meta{Title: Title(pd.DocType, pd.DateOfService), DocumentType: pd.DocType, DateOfService: pd.DateOfService,
		ID: Number(pd.ID, pd.Version), Created: created(pd)}
	if err := pdfa.Write(&out, meta, pages); err != nil {
		return nil, fmt.Errorf("patient document %s v%d: %w", pd.ID, pd.Version, err)
	}
	return out.Bytes(), nil
}

// created is when a version was made, to the second: its PDF's and messages' date.
func created(pd storage.PatientDocument) time.Time { return pd.CreatedAt.UTC().Truncate(time.Second) }

func (b *Builder) get(ctx context.Context, key string) ([]byte, error) {
	rc, err := b.Objects.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Document builds the deliver.Document of a patient document version, with its PDF, the
// EMPI's record of its patient, and, for a replacement, the version it replaces and why.
// Its MRN systems are HL7's; FHIR turns them into URIs.
func (b *Builder) Document(ctx context.Context, pd storage.PatientDocument) (deliver.Document, error) {
	d, err := b.header(ctx, pd)
	if err != nil {
		return d, err
	}
	if d.PDF, err = b.PDF(ctx, pd); err != nil {
		return d, err
	}
	return d, nil
}

// header is the document without its PDF: enough for a cancel.
func (b *Builder) header(ctx context.Context, pd storage.PatientDocument) (deliver.Document, error) {
	p, system, err := b.Store.DocumentPatient(ctx, pd.MRN)
	if errors.Is(err, storage.ErrNotFound) {
		return deliver.Document{}, chartscan.Errorf(chartscan.ENotFound, "the patient of document %s v%d is not in the EMPI", pd.ID, pd.Version)
	}
	if err != nil {
		return deliver.Document{}, err
	}
	d := deliver.Document{ID: pd.ID, Version: pd.Version, Patient: deliver.PatientOf(p, system), DocumentType: pd.DocType,
		DateOfService: pd.DateOfService, Created: created(pd), Facility: b.Facility}
	if pd.ReplacesVersion > 0 {
		old, err := b.Store.PatientDocument(ctx, pd.ID, pd.ReplacesVersion)
		if err != nil {
			return d, err
		}
		d.Replaces = deliver.Replaced{ID: old.ID, Version: old.Version, EnteredInError: old.EnteredInError, Reason: old.SupersededReason}
	}
	return d, nil
}

// Cancel builds the MDM^T11 that withdraws version pd from the EHR, under the patient it
// was filed to: for a version entered in error that a replacement sent as an original
// follows, and for one withdrawn with no replacement.
func (b *Builder) Cancel(ctx context.Context, pd storage.PatientDocument) ([]byte, error) {
	d, err := b.header(ctx, pd)
	if err != nil {
		return nil, err
	}
	d.Replaces = deliver.Replaced{}
	reason := pd.SupersededReason
	if reason == "" {
		reason = "withdrawn"
	}
	at := d.Created
	if pd.SupersededAt != nil {
		at = pd.SupersededAt.UTC().Truncate(time.Second)
	}
	return deliver.MDMCancel(d, reason, ControlID(d.Number(), "cancel"), at)
}

// MDM returns the MDM message of d (T02 original, T10 replacement), its time the
// version's creation and its control id fixed by the document number.
func MDM(d deliver.Document) ([]byte, error) {
	return deliver.MDM(d, ControlID(d.Number(), "mdm"), d.Created)
}

// FHIR returns d with its MRN systems as FHIR needs them: URIs. The patient's own MRN
// system is kept when it is one; when it names the facility's system (or nothing), the
// facility's URI stands for it. Another authority's namespace cannot be turned into a
// URI here: the document is refused, naming neither the patient nor the MRN.
func (b *Builder) FHIR(d deliver.Document) (deliver.Document, error) {
	uri, ok := FHIRSystem(b.MRNSystemURI)
	if !ok {
		if own, ok := FHIRSystem(b.Facility.MRNSystem); ok {
			uri = own
		} else {
			return d, chartscan.Errorf(chartscan.EInvalid, "FHIR needs the facility's MRN system as a URI or OID: set CHARTSCAN_MRN_SYSTEM_URI")
		}
	}
	d.Facility.MRNSystem = uri
	own := strings.TrimSpace(d.Patient.MRNSystem)
	switch s, ok := FHIRSystem(own); {
	case ok:
		d.Patient.MRNSystem = s
	case own == "" || strings.EqualFold(own, strings.TrimSpace(b.Facility.MRNSystem)):
		d.Patient.MRNSystem = ""
	default:
		return d, chartscan.Errorf(chartscan.EInvalid, "document %s: the patient's MRN was issued by another assigning authority, which FHIR cannot name without its URI", d.Number())
	}
	return d, nil
}

var oidPattern = regexp.MustCompile(`^[0-2](\.(0|[1-9][0-9]*))+$`)

// FHIRSystem returns an identifier system as a FHIR uri: a URI (urn:, http:, https:) as
// it is, a bare OID as urn:oid:…; ok is false for anything else (an HL7 namespace).
func FHIRSystem(s string) (string, bool) {
	s = strings.TrimSpace(s)
	l := strings.ToLower(s)
	switch {
	case s == "" || strings.ContainsAny(s, " \t\r\n|"):
		return "", false
	case len(s) <= 255 && oidPattern.MatchString(s):
		return "urn:oid:" + s, true
	case strings.HasPrefix(l, "urn:") && len(s) > len("urn:x:"), strings.HasPrefix(l, "http://"), strings.HasPrefix(l, "https://"):
		return s, true
	}
	return "", false
}

// Number is the document number of a version, as deliver.Document.Number writes it.
func Number(id string, version int) string {
	return deliver.Document{ID: id, Version: version}.Number()
}

// ControlID is a message control id (MSH-10) fixed by the document number and what the
// message does, so a message written again is the same: 20 characters.
func ControlID(number, purpose string) string {
	h := sha256.Sum256([]byte(number + "|" + purpose))
	return "CS" + strings.ToUpper(hex.EncodeToString(h[:9]))
}

// Title is a document's title in its PDF: its type and date of service, never PHI.
func Title(docType, dos string) string {
	t := "Scanned document"
	if _, display, ok := deliver.LOINC(docType); ok {
		t = display
	}
	if dos != "" {
		t += ", " + dos
	}
	return t
}
