package deliver

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/chartscan/chartscan"
)

// SendingApplication is chartscan's name in MSH-3 and the namespace of the document
// numbers it assigns (TXA-12, TXA-13).
const SendingApplication = "CHARTSCAN"

// DocumentSystem is the default system of a DocumentReference's masterIdentifier: the
// namespace of chartscan's document numbers. A facility with an OID arc of its own for
// document ids sets Facility.DocumentSystem instead.
const DocumentSystem = "urn:chartscan:document-number"

// Document is one patient document as chartscan delivers it: pages filed to one patient,
// of one document type and date of service, as one PDF.
type Document struct {
	// ID is chartscan's id of the document, the same for all its versions: letters,
	// digits, '.', '-' and '_', 64 at most.
	ID string
	// Version is 1 for the original; a replacement is a later version of the same ID, or
	// a document of another ID that names the one it replaces in Replaces.
	Version int
	Patient Patient
	// DocumentType is one of chartscan's document types (chartscan.DocTypeProgressNote,
	// …); "" or any other value is a scanned document of unknown type.
	DocumentType string
	// DateOfService is YYYY-MM-DD; "" when no page gave one.
	DateOfService string
	// Created is when chartscan built this version of the document.
	Created time.Time
	// PDF is the document's searchable PDF.
	PDF []byte
	// Replaces, when its ID is set, is the delivered document this one replaces.
	Replaces Replaced
	// Facility is who sends the document.
	Facility Facility
}

// Patient is the patient a document is filed to, as the EMPI holds them.
type Patient struct {
	MRN string
	// MRNSystem is who assigned the MRN, as the EMPI stores it: a URI (urn:oid:1.2.3,
	// https://…), a bare OID, or an HL7 assigning-authority namespace (WEST). Empty: the
	// facility's (Facility.MRNSystem). FHIR needs a URI or an OID; HL7 takes all three.
	MRNSystem string
	Family    string
	Given     string // given and middle names, space-separated
	BirthDate string // YYYY-MM-DD, or the partial YYYY-MM or YYYY; "" unknown
	Sex       string // male, female, other, unknown (or M, F, O, U); "" unknown
}

// LogValue redacts the patient: everything but the fact that it is one is PHI.
func (p Patient) LogValue() slog.Value { return slog.StringValue("[patient]") }

// PatientOf returns the EMPI patient p, whose MRN was assigned by mrnSystem, as a
// document's patient.
func PatientOf(p chartscan.Patient, mrnSystem string) Patient {
	return Patient{MRN: p.MRN, MRNSystem: mrnSystem, Family: p.Family, Given: p.Given, BirthDate: p.BirthDate, Sex: p.Sex}
}

// Replaced names a delivered document a new one replaces.
type Replaced struct {
	ID      string
	Version int
	// EnteredInError says the replaced document was wrong, not just out of date: filed to
	// the wrong patient, pages that were not the patient's. FHIR marks it
	// entered-in-error (otherwise superseded); HL7 cancels it (MDMCancel of the old
	// document, T11) and sends the new one as an original (T02) instead of a replacement
	// (T10), since a T10 cannot move a document to another patient.
	EnteredInError bool
	// Reason is a short reason for the change, without PHI ("reviewer corrected the
	// document type"): TXA-21 of a T10.
	Reason string
}

// Number is the replaced document's document number (see Document.Number).
func (r Replaced) Number() string { return documentNumber(r.ID, r.Version) }

// Facility is the sender: the facility whose records chartscan delivers.
type Facility struct {
	// Name is the facility's namespace in MSH-4 and its name as the FHIR custodian.
	Name string
	// OID is the facility's ISO OID: MSH-4's universal id, the custodian's identifier.
	OID string
	// MRNSystem is the system of the facility's MRNs, for a patient whose own is empty
	// (CHARTSCAN_MRN_SYSTEM).
	MRNSystem string
	// ReceivingApp and ReceivingFacility are MSH-5 and MSH-6, as the interface engine
	// wants them; may be empty.
	ReceivingApp, ReceivingFacility string
	// DocumentSystem is the masterIdentifier system; empty: DocumentSystem.
	DocumentSystem string
	// HL7DocTypes maps chartscan's document types (and "" for an unknown type) to the
	// TXA-2 codes the receiver's table 0270 uses, overriding HL7DocType's defaults.
	HL7DocTypes map[string]string
}

// LogValue names the document by id and version only.
func (d Document) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", d.ID), slog.Int("version", d.Version), slog.String("type", d.DocumentType))
}

// Number is the document number of this version, unique per version: the
// masterIdentifier value in FHIR and TXA-12 in HL7, which the receiver's duplicate check
// keys on. It is the ID and the version: "4f1c…-v2".
func (d Document) Number() string { return documentNumber(d.ID, d.Version) }

func documentNumber(id string, version int) string { return id + "-v" + strconv.Itoa(version) }

func (d Document) documentSystem() string {
	if s := strings.TrimSpace(d.Facility.DocumentSystem); s != "" {
		return s
	}
	return DocumentSystem
}

// uuidFor returns a UUID that is the same every time for the same document version and
// purpose, so a document built again is byte for byte the same.
func (d Document) uuidFor(purpose string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(d.documentSystem()+"|"+d.Number()+"|"+purpose)).String()
}

// docTypeInfo is what a chartscan document type is called in LOINC and HL7 table 0270.
type docTypeInfo struct {
	loinc, display string // LOINC code and its display; "" for no code
	hl7            string // TXA-2 default
}

// docTypes are the LOINC document codes (the Document Ontology's, as issue 14 lists them)
// and HL7 table 0270 codes of chartscan's document types. Table 0270 is user-defined;
// its suggested values are used where it has one (PR, DS, DI, OP), a mnemonic otherwise.
var docTypes = map[string]docTypeInfo{
	chartscan.DocTypeProgressNote:     {"11506-3", "Progress note", "PR"},
	chartscan.DocTypeDischargeSummary: {"18842-5", "Discharge summary", "DS"},
	chartscan.DocTypeLab:              {"11502-2", "Laboratory report", "LAB"},
	chartscan.DocTypeRadiology:        {"18748-4", "Diagnostic imaging study", "DI"},
	chartscan.DocTypeOperative:        {"11504-8", "Surgical operation note", "OP"},
	chartscan.DocTypeConsent:          {"59284-0", "Consent Document", "CONSENT"},
	chartscan.DocTypeNursing:          {"34746-8", "Nurse Note", "NURSING"},
}

// unknownType is what a document of no known type is called: it gets no LOINC code (no
// LOINC document code says "a scanned page of unknown kind"; guessing one such as
// 34133-9 would mislabel it in the clinician's view), only this text.
const (
	unknownTypeText = "Scanned document"
	unknownTypeHL7  = "SCAN"
)

// LOINC returns the LOINC document code of a chartscan document type and its display;
// ok is false for a type that has none (an unknown type is sent as text only).
func LOINC(docType string) (code, display string, ok bool) {
	t, ok := docTypes[docType]
	return t.loinc, t.display, ok
}

// HL7DocType returns the TXA-2 code of a document type: the facility's own
// (Facility.HL7DocTypes), else HL7 table 0270's suggested value (PR progress note, DS
// discharge summary, DI diagnostic imaging, OP operative report), else a mnemonic (LAB,
// CONSENT, NURSING; SCAN for an unknown type).
func (f Facility) HL7DocType(docType string) string {
	if _, known := docTypes[docType]; !known {
		docType = ""
	}
	if c, ok := f.HL7DocTypes[docType]; ok && strings.TrimSpace(c) != "" {
		return strings.TrimSpace(c)
	}
	if t, ok := docTypes[docType]; ok {
		return t.hl7
	}
	return unknownTypeHL7
}

// typeTitle is the human-readable name of the document's type.
func (d Document) typeTitle() string {
	if t, ok := docTypes[d.DocumentType]; ok {
		return t.display
	}
	return unknownTypeText
}

// title is the attachment's title: the type and the date of service, no PHI.
func (d Document) title() string {
	if d.DateOfService != "" {
		return d.typeTitle() + ", " + d.DateOfService
	}
	return d.typeTitle()
}

// invalid returns the user-safe error of a document that cannot be delivered: it names
// the field, never its value.
func invalid(format string, args ...any) error {
	return chartscan.Errorf(chartscan.EInvalid, "deliver: "+format, args...)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validate checks what every message needs.
func (d Document) validate() error {
	if !idPattern.MatchString(d.ID) {
		return invalid("document id must be 1 to 64 letters, digits, '.', '-' or '_'")
	}
	if d.Version < 1 {
		return invalid("document version must be 1 or more")
	}
	if r := d.Replaces; r.ID != "" || r.Version != 0 {
		if !idPattern.MatchString(r.ID) || r.Version < 1 {
			return invalid("the replaced document needs an id and a version of 1 or more")
		}
		if r.ID == d.ID && r.Version >= d.Version {
			return invalid("a replacement must be a later version than the document it replaces")
		}
		if !cleanText(r.Reason) {
			return invalid("replacement reason is not valid text")
		}
	}
	p := d.Patient
	if strings.TrimSpace(p.MRN) == "" {
		return invalid("no MRN")
	}
	for _, f := range []struct{ name, v string }{
		{"MRN", p.MRN}, {"MRN system", p.MRNSystem}, {"family name", p.Family}, {"given name", p.Given},
		{"facility name", d.Facility.Name}, {"facility MRN system", d.Facility.MRNSystem},
		{"receiving application", d.Facility.ReceivingApp}, {"receiving facility", d.Facility.ReceivingFacility},
	} {
		if !cleanText(f.v) {
			return invalid("%s is not valid text", f.name)
		}
	}
	if oid := strings.TrimSpace(d.Facility.OID); oid != "" && !isOID(oid) {
		return invalid("facility OID is not an OID")
	}
	if _, ok := hl7Date(p.BirthDate); !ok {
		return invalid("invalid birth date")
	}
	if _, ok := hl7Sex(p.Sex); !ok {
		return invalid("invalid sex")
	}
	if d.DateOfService != "" {
		if _, err := time.Parse(time.DateOnly, d.DateOfService); err != nil {
			return invalid("date of service must be YYYY-MM-DD")
		}
	}
	if d.Created.IsZero() {
		return invalid("no creation time")
	}
	if !bytes.HasPrefix(d.PDF, []byte("%PDF-")) {
		return invalid("the document is not a PDF")
	}
	return nil
}

// cleanText reports whether s is valid UTF-8 without NUL.
func cleanText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// mrnSystem is the system of the patient's MRN: the patient's own, else the facility's.
func (d Document) mrnSystem() string {
	if s := strings.TrimSpace(d.Patient.MRNSystem); s != "" {
		return s
	}
	return strings.TrimSpace(d.Facility.MRNSystem)
}

var oidPattern = regexp.MustCompile(`^[0-2](\.(0|[1-9][0-9]*))+$`)

// isOID reports whether s is an ISO OID in dotted form (1.2.840.…).
func isOID(s string) bool { return len(s) <= 255 && oidPattern.MatchString(s) }

// fhirSystem returns an identifier system as a FHIR uri: a URI as it is, a bare OID as
// urn:oid:…; ok is false for an HL7 namespace, which names no URI.
func fhirSystem(s string) (string, bool) {
	s = strings.TrimSpace(s)
	switch {
	case isOID(s):
		return "urn:oid:" + s, true
	case strings.ContainsAny(s, " \t\r\n|"):
		return "", false
	case strings.HasPrefix(strings.ToLower(s), "urn:"), strings.HasPrefix(strings.ToLower(s), "http://"),
		strings.HasPrefix(strings.ToLower(s), "https://"):
		return s, true
	}
	return "", false
}

// hl7Date turns YYYY-MM-DD (or YYYY-MM, YYYY) into the HL7 DT YYYYMMDD (YYYYMM, YYYY);
// ok is false for anything else. "" is "".
func hl7Date(s string) (string, bool) {
	s = strings.TrimSpace(s)
	switch len(s) {
	case 0:
		return "", true
	case 4:
		_, err := time.Parse("2006", s)
		return s, err == nil
	case 7:
		_, err := time.Parse("2006-01", s)
		return strings.ReplaceAll(s, "-", ""), err == nil
	case 10:
		_, err := time.Parse(time.DateOnly, s)
		return strings.ReplaceAll(s, "-", ""), err == nil
	}
	return "", false
}

// hl7Sex returns HL7 table 0001's code of a sex (FHIR administrative gender or the
// code itself).
func hl7Sex(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", true
	case "male", "m":
		return "M", true
	case "female", "f":
		return "F", true
	case "other", "o":
		return "O", true
	case "unknown", "u":
		return "U", true
	}
	return "", false
}

// pdfFacts are what both message kinds say about the PDF.
type pdfFacts struct {
	base64 string // standard Base64, padded
	sha1   string // Base64 of the SHA-1, as FHIR's Attachment.hash
	size   int
}

func (d Document) pdfFacts() pdfFacts {
	h := sha1.Sum(d.PDF)
	return pdfFacts{
		base64: base64.StdEncoding.EncodeToString(d.PDF),
		sha1:   base64.StdEncoding.EncodeToString(h[:]),
		size:   len(d.PDF),
	}
}

// fhirInstant formats t as a FHIR instant (seconds and a zone).
func fhirInstant(t time.Time) string { return t.Format(time.RFC3339) }

// hl7Time formats t as an HL7 TS to the second with its zone.
func hl7Time(t time.Time) string { return t.Format("20060102150405-0700") }
