package deliver

import (
	"strings"
	"time"
	"unicode/utf8"
)

// HL7 v2 MDM trigger events the builders write.
const (
	EventOriginal    = "T02" // original document notification and content
	EventReplacement = "T10" // document replacement notification and content
	EventCancel      = "T11" // document cancel notification
)

// hl7Version is MSH-12 of every message written.
const hl7Version = "2.5.1"

// hl7Charset is MSH-18: the messages are UTF-8 (HL7 table 0211).
const hl7Charset = "UNICODE UTF-8"

// The delimiters of every message written: MSH-1 and MSH-2.
const (
	fieldSep = "|"
	compSep  = "^"
	subSep   = "&"
	encChars = `^~\&`
)

// MDM returns the HL7 v2.5.1 message that delivers d: MDM^T02^MDM_T02 for an original,
// MDM^T10^MDM_T02 for a replacement (d.Replaces set, TXA-13 the replaced document's
// number, TXA-21 the reason). A replacement of a document entered in error
// (d.Replaces.EnteredInError: filed to the wrong patient) is sent as a T02: the old one
// is cancelled on its own, with MDMCancel of the old document, under its own patient.
//
// Segments: MSH (CHARTSCAN, the facility as namespace^OID^ISO, the receiving application
// and facility, now, the event, ctrlID, processing id P, version 2.5.1, MSH-18 UNICODE
// UTF-8), EVN (the event, now), PID (PID-3 MRN^^^authority^MR, PID-5 family^given with
// name type L, PID-7 the birth date, PID-8 the sex), PV1 (patient class N), TXA (TXA-2
// the document type as the facility's table 0270 codes it, TXA-3 AP, TXA-4 the date of
// service, TXA-6 when d was created, TXA-12 the document number^CHARTSCAN, TXA-17 AU,
// TXA-19 AV) and OBX (OBX-2 ED, OBX-3 the LOINC document code, OBX-5
// ^application^pdf^Base64^<the PDF>, OBX-11 F). Every text value has the delimiters
// escaped (\F\ \S\ \T\ \R\ \E\) and line breaks turned into spaces. Segments end in \r;
// the message is not MLLP-framed.
//
// The MRN's assigning authority (CX-4) is the patient's MRN system, else the facility's:
// an OID or urn:oid: as &OID&ISO, another URI as &URI&URI, a namespace as it is.
func MDM(d Document, ctrlID string, now time.Time) ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	event := EventOriginal
	if d.Replaces.ID != "" && !d.Replaces.EnteredInError {
		event = EventReplacement
	}
	return d.mdm(event, ctrlID, now)
}

// MDMCancel returns the MDM^T11^MDM_T01 that cancels the delivered document d (its PDF
// may be left out): MSH, EVN, PID and PV1 as MDM writes them for d's patient (the
// patient it was filed to: the right patient's identity never goes on the wrong one's
// record), and a TXA with d's document number in TXA-12, TXA-19 CA (deleted) and the
// reason, without PHI, in TXA-21; no OBX. This is HL7's process for a document filed to
// the wrong patient: cancel it there, send the right one as a T02.
func MDMCancel(d Document, reason, ctrlID string, now time.Time) ([]byte, error) {
	if len(d.PDF) == 0 {
		d.PDF = []byte("%PDF-") // not sent: a T11 has no content
	}
	if d.Created.IsZero() {
		d.Created = now
	}
	d.Replaces = Replaced{}
	if err := d.validate(); err != nil {
		return nil, err
	}
	if !cleanText(reason) {
		return nil, invalid("cancel reason is not valid text")
	}
	d.Replaces.Reason = reason // TXA-21 of the T11
	return d.mdm(EventCancel, ctrlID, now)
}

func (d Document) mdm(event, ctrlID string, now time.Time) ([]byte, error) {
	if !validControlID(ctrlID) {
		return nil, invalid("control id must be 1 to 20 printable characters without HL7 delimiters")
	}
	if now.IsZero() {
		return nil, invalid("no message time")
	}
	f := d.Facility
	if strings.TrimSpace(f.Name) == "" && strings.TrimSpace(f.OID) == "" {
		return nil, invalid("no facility name or OID for MSH-4")
	}
	structure := "MDM_T02"
	if event == EventCancel {
		structure = "MDM_T01"
	}
	sendingFacility := esc(f.Name)
	if oid := strings.TrimSpace(f.OID); oid != "" {
		sendingFacility += compSep + oid + compSep + "ISO"
	}
	var segs [][]string
	segs = append(segs,
		[]string{"MSH", encChars, SendingApplication, sendingFacility, esc(f.ReceivingApp), esc(f.ReceivingFacility),
			hl7Time(now), "", "MDM" + compSep + event + compSep + structure, ctrlID, "P", hl7Version,
			"", "", "", "", "", hl7Charset},
		[]string{"EVN", event, hl7Time(now)},
		d.pid(),
		[]string{"PV1", "1", "N"},
		d.txa(event),
	)
	if event != EventCancel {
		code, display, system := unknownTypeHL7, unknownTypeText, "L"
		if c, disp, ok := LOINC(d.DocumentType); ok {
			code, display, system = c, disp, "LN"
		}
		segs = append(segs, []string{"OBX", "1", "ED", join(compSep, esc(code), esc(display), system), "",
			join(compSep, "", "application", "pdf", "Base64", d.pdfFacts().base64), "", "", "", "", "", "F"})
	}
	var b strings.Builder
	for _, s := range segs {
		if s[0] == "MSH" {
			// MSH-1 is the field separator itself: MSH-2 follows it directly.
			b.WriteString("MSH" + fieldSep + strings.Join(s[1:], fieldSep))
		} else {
			b.WriteString(strings.TrimRight(strings.Join(s, fieldSep), fieldSep))
		}
		b.WriteByte('\r')
	}
	return []byte(b.String()), nil
}

// pid is the PID segment of d's patient.
func (d Document) pid() []string {
	p := d.Patient
	cx := join(compSep, esc(p.MRN), "", "", hl7Authority(d.mrnSystem()), "MR")
	var name string
	if strings.TrimSpace(p.Family) != "" || strings.TrimSpace(p.Given) != "" {
		name = join(compSep, esc(p.Family), esc(p.Given), "", "", "", "", "L")
	}
	dob, _ := hl7Date(p.BirthDate)
	sex, _ := hl7Sex(p.Sex)
	return []string{"PID", "1", "", cx, "", name, "", dob, sex}
}

// txa is the TXA segment of d for event.
func (d Document) txa(event string) []string {
	t := make([]string, 24) // TXA and TXA-1 … TXA-23
	t[0] = "TXA"
	t[1] = "1"
	t[2] = esc(d.Facility.HL7DocType(d.DocumentType))
	t[3] = "AP" // other application data: the content is a PDF
	t[4], _ = hl7Date(d.DateOfService)
	t[6] = hl7Time(d.Created)
	t[12] = esc(d.Number()) + compSep + SendingApplication
	switch event {
	case EventReplacement:
		t[13] = esc(d.Replaces.Number()) + compSep + SendingApplication
		t[21] = esc(d.Replaces.Reason)
	case EventCancel:
		t[21] = esc(d.Replaces.Reason)
	}
	t[17] = "AU" // authenticated
	t[19] = "AV" // available for patient care
	if event == EventCancel {
		t[19] = "CA" // deleted
	}
	return t
}

// hl7Authority is the HD of CX-4 for an identifier system: an OID (bare or urn:oid:) as
// &OID&ISO, another URI as &URI&URI, an HL7 namespace as it is; "" for none.
func hl7Authority(system string) string {
	s := strings.TrimSpace(system)
	if oid, ok := strings.CutPrefix(strings.ToLower(s), "urn:oid:"); ok && isOID(oid) {
		s = oid
	}
	switch {
	case s == "":
		return ""
	case isOID(s):
		return subSep + s + subSep + "ISO"
	case strings.Contains(s, ":"):
		return subSep + esc(s) + subSep + "URI"
	}
	return esc(s)
}

// join joins parts with sep and drops the empty parts at the end.
func join(sep string, parts ...string) string {
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, sep)
}

// esc escapes a text value for an HL7 field, component or subcomponent: the delimiters
// as \F\ \S\ \T\ \R\ \E\, line breaks and other control characters as spaces; leading
// and trailing spaces are dropped.
func esc(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\E\`)
		case '|':
			b.WriteString(`\F\`)
		case '^':
			b.WriteString(`\S\`)
		case '&':
			b.WriteString(`\T\`)
		case '~':
			b.WriteString(`\R\`)
		default:
			if r < 0x20 || r == 0x7f {
				r = ' '
			}
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}

// validControlID reports whether id can be MSH-10 as it is: 1 to 20 printable ASCII
// characters, none a delimiter.
func validControlID(id string) bool {
	if id == "" || len(id) > 20 || !utf8.ValidString(id) {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`|^~\&`, c) >= 0 {
			return false
		}
	}
	return true
}
