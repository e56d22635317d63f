package indexer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/chartscan/chartscan"
)

// fhirPatient is the part of a FHIR R4 Patient resource the EMPI import reads.
type fhirPatient struct {
	Identifier []struct {
		System string `json:"system"`
		Value  string `json:"value"`
		Type   struct {
			Coding []struct {
				Code string `json:"code"`
			} `json:"coding"`
		} `json:"type"`
	} `json:"identifier"`
	Name      []fhirName `json:"name"`
	BirthDate string     `json:"birthDate"`
	Gender    string     `json:"gender"`
	Address   []struct {
		Line       []string `json:"line"`
		City       string   `json:"city"`
		PostalCode string   `json:"postalCode"`
		State      string   `json:"state"`
	} `json:"address"`
	Telecom []struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"telecom"`
	ID   string `json:"id"`
	Link []struct {
		Other struct {
			Reference  string `json:"reference"`
			Identifier struct {
				System string `json:"system"`
				Value  string `json:"value"`
			} `json:"identifier"`
		} `json:"other"`
		Type string `json:"type"`
	} `json:"link"`
}

// fhirLink is a Patient.link of type replaced-by, waiting for the file's end to name the
// patient it points to by MRN.
type fhirLink struct {
	merged, reference, mrn, where string
}

// fhirName is a FHIR HumanName.
type fhirName struct {
	Use    string   `json:"use"`
	Text   string   `json:"text"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

// fhirHead is just enough of any resource to know what it is. Resources other than
// Patient are not decoded further: their fields of the same names have other types.
type fhirHead struct {
	ResourceType string `json:"resourceType"`
}

type fhirBundle struct {
	ResourceType string `json:"resourceType"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

// readJSON reads FHIR JSON: NDJSON when the first or second line is a whole JSON value
// (so a broken first line is one bad record), otherwise one (pretty-printed) Bundle,
// which is decoded whole.
func (rr *recordReader) readJSON(br *bufio.Reader, skipped int) error {
	first, err := br.ReadBytes('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("read records: %w", err)
	}
	if json.Valid(bytes.TrimSpace(first)) {
		return rr.readNDJSON(first, br, skipped)
	}
	if next, _ := br.Peek(br.Buffered()); len(next) > 0 {
		if i := bytes.IndexByte(next, '\n'); i >= 0 && next[0] == '{' && json.Valid(bytes.TrimSpace(next[:i])) {
			return rr.readNDJSON(first, br, skipped)
		}
	}
	dec := json.NewDecoder(io.MultiReader(bytes.NewReader(first), br))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return invalid("bundle", "%s", jsonReason(err))
	}
	var head fhirHead
	if err := json.Unmarshal(raw, &head); err != nil {
		return invalid("bundle", "%s", jsonReason(err))
	}
	switch head.ResourceType {
	case "Patient":
		return rr.readPatient(raw, "resource", "")
	case "Bundle":
		var b fhirBundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return invalid("bundle", "%s", jsonReason(err))
		}
		return rr.readBundle(b, "")
	}
	return chartscan.Errorf(chartscan.EInvalid, "json: not a FHIR Patient, Bundle or NDJSON")
}

// readNDJSON reads one resource per line, starting with first, which was already read.
func (rr *recordReader) readNDJSON(first []byte, br *bufio.Reader, skipped int) error {
	lineNo := skipped
	for raw := first; ; {
		lineNo++
		if err := rr.readResource(bytes.TrimSpace(raw), fmt.Sprintf("line %d", lineNo)); err != nil {
			return err
		}
		var err error
		raw, err = br.ReadBytes('\n')
		if err == io.EOF && len(raw) == 0 {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read records: %w", err)
		}
	}
}

// readResource handles one NDJSON line: a Patient, a Bundle, another resource (skipped
// without a word: an export holds Observations and Organizations too), or something
// that is no FHIR resource at all (a bad record).
func (rr *recordReader) readResource(raw []byte, where string) error {
	if len(raw) == 0 {
		return nil
	}
	var head fhirHead
	if err := json.Unmarshal(raw, &head); err != nil {
		return rr.bad(where, jsonReason(err))
	}
	switch head.ResourceType {
	case "Patient":
		return rr.readPatient(raw, where, "")
	case "Bundle":
		var b fhirBundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return rr.bad(where, jsonReason(err))
		}
		return rr.readBundle(b, where+" ")
	case "":
		return rr.bad(where, "not a FHIR resource")
	}
	return nil
}

// readBundle reads the Patient entries of a Bundle, of any type: a collection, a
// searchset, a transaction or batch (its POST and PUT entries carry the resource; a
// DELETE carries none) and the Bundles inside one (a document or message in a
// searchset). Bad entries are named by the entry's index, as FHIRPath does (entry[0] is
// the first).
func (rr *recordReader) readBundle(b fhirBundle, prefix string) error {
	for i, e := range b.Entry {
		where := fmt.Sprintf("%sentry[%d]", prefix, i)
		if len(e.Resource) == 0 || string(e.Resource) == "null" {
			continue // a transaction's DELETE, say: no resource to read
		}
		var head fhirHead
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			if err := rr.bad(where, jsonReason(err)); err != nil {
				return err
			}
			continue
		}
		var err error
		switch head.ResourceType {
		case "Patient":
			err = rr.readPatient(e.Resource, where, e.FullURL)
		case "Bundle":
			if strings.Count(prefix, "entry[") >= 8 {
				err = rr.bad(where, "Bundles nested too deep")
				break
			}
			var inner fhirBundle
			if jerr := json.Unmarshal(e.Resource, &inner); jerr != nil {
				err = rr.bad(where, jsonReason(jerr))
				break
			}
			err = rr.readBundle(inner, where+".resource.")
		case "":
			err = rr.bad(where, "not a FHIR resource")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readPatient reads one Patient resource; fullURL is its Bundle entry's, which a link
// elsewhere in the file may use to name it.
func (rr *recordReader) readPatient(raw []byte, where, fullURL string) error {
	var fp fhirPatient
	if err := json.Unmarshal(raw, &fp); err != nil {
		return rr.bad(where, jsonReason(err))
	}
	rec := fp.record(rr.opts.MRNSystem)
	p := rec.Patient
	if p.MRN == "" && rr.opts.MRNSystem != "" && len(fp.Identifier) > 0 {
		return rr.bad(where, "no identifier of the facility's MRN system")
	}
	if mrn := NormalizeMRN(strings.TrimSpace(p.MRN)); mrn != "" {
		if fp.ID != "" {
			rr.ids["Patient/"+fp.ID] = mrn
		}
		if fullURL != "" {
			rr.ids[fullURL] = mrn
		}
		for _, l := range fp.Link {
			if l.Type != "replaced-by" {
				continue
			}
			lk := fhirLink{merged: mrn, reference: l.Other.Reference, where: where}
			if v := l.Other.Identifier.Value; v != "" && (rr.opts.MRNSystem == "" || strings.EqualFold(l.Other.Identifier.System, rr.opts.MRNSystem)) {
				lk.mrn = NormalizeMRN(v)
			}
			rr.links = append(rr.links, lk)
		}
	}
	return rr.patient(rec, where, parseBirthDate(func(s string) (string, bool) { return s, isISODate(s) }))
}

// resolveLinks hands each replaced-by link, its patient named by MRN, to Replaced.
func (rr *recordReader) resolveLinks() error {
	if rr.opts.Replaced == nil {
		return nil
	}
	for _, l := range rr.links {
		survivor := l.mrn
		if survivor == "" {
			ref := l.reference
			if i := strings.Index(ref, "Patient/"); i > 0 {
				ref = ref[i:] // an absolute URL of the resource
			}
			if h, _, ok := strings.Cut(ref, "/_history/"); ok {
				ref = h
			}
			if survivor = rr.ids[ref]; survivor == "" {
				survivor = rr.ids[l.reference]
			}
		}
		switch {
		case survivor == "":
			if err := rr.bad(l.where, "Patient.link names a patient this file does not hold"); err != nil {
				return err
			}
		case survivor != l.merged:
			if err := rr.opts.Replaced(l.merged, survivor); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonReason says what is wrong with a JSON value without the decoder's message, which
// can quote the input.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "not a FHIR resource"
		}
		return fmt.Sprintf("field %s has the wrong JSON type", te.Field)
	}
	return "not valid JSON"
}

// record maps a FHIR Patient to an EMPI record: the patient, its MRN's system and its
// other identifiers; system, when set, is the identifier system of the facility's MRNs.
func (fp fhirPatient) record(system string) Record {
	rec := Record{Patient: fp.patient(system)}
	picked := false
	for _, id := range fp.Identifier {
		if id.Value == "" {
			continue
		}
		sys := id.System
		if sys == "" {
			for _, c := range id.Type.Coding {
				if c.Code != "" {
					sys = c.Code
					break
				}
			}
		}
		if !picked && id.Value == rec.MRN {
			rec.MRNSystem, picked = id.System, true
			continue
		}
		rec.IDs = append(rec.IDs, SystemID{System: sys, Value: id.Value})
	}
	return rec
}

// patient maps a FHIR Patient to the EMPI's patient, before normalization; system, when
// set, is the identifier system of the facility's MRNs.
func (fp fhirPatient) patient(system string) chartscan.Patient {
	p := chartscan.Patient{BirthDate: fp.BirthDate, Sex: fp.Gender}
	p.MRN = fp.mrn(system)
	if n, ok := fp.name(); ok {
		p.Family, p.Given = n.Family, strings.Join(n.Given, " ")
		if strings.TrimSpace(p.Family) == "" && strings.TrimSpace(p.Given) == "" {
			p.Family, p.Given = splitNameText(n.Text)
		}
	}
	if len(fp.Address) > 0 {
		a := fp.Address[0]
		p.Street, p.City, p.Postcode, p.State = strings.Join(a.Line, ", "), a.City, a.PostalCode, a.State
	}
	for _, t := range fp.Telecom {
		if t.System == "phone" && t.Value != "" {
			p.Phone = t.Value
			break
		}
	}
	return p
}

// nameRank orders HumanName uses: the legal name first, then the one in use, then a name
// without a use or of another kind; names that are no longer (old, maiden) or not
// really the patient's (nickname, anonymous) come last.
var nameRank = map[string]int{"official": 0, "usual": 1, "": 2, "temp": 2, "nickname": 3, "anonymous": 3, "old": 4, "maiden": 4}

// name picks the patient's name: of the names that hold anything, the best ranked by
// use, the first of equals.
func (fp fhirPatient) name() (fhirName, bool) {
	best, found := fhirName{}, false
	rank := func(n fhirName) int {
		if r, ok := nameRank[n.Use]; ok {
			return r
		}
		return 2
	}
	for _, n := range fp.Name {
		if strings.TrimSpace(n.Family+n.Text+strings.Join(n.Given, "")) == "" {
			continue
		}
		if !found || rank(n) < rank(best) {
			best, found = n, true
		}
	}
	return best, found
}

// nameAffixes are the titles and suffixes a HumanName's text carries that are no part of
// the name (lower case, without the dot).
var nameAffixes = map[string]bool{"mr": true, "mrs": true, "ms": true, "miss": true, "mx": true, "dr": true,
	"prof": true, "jr": true, "sr": true, "ii": true, "iii": true, "iv": true, "md": true, "phd": true}

// surnameParticles join the word after them into the family name: "Ludwig van
// Beethoven" is a Beethoven filed under "van Beethoven".
var surnameParticles = map[string]bool{"van": true, "von": true, "der": true, "den": true, "de": true, "del": true,
	"della": true, "di": true, "da": true, "dos": true, "das": true, "du": true, "la": true, "le": true, "ter": true,
	"ten": true, "bin": true, "ibn": true, "al": true, "el": true, "st": true}

// splitNameText splits a HumanName's text, when a record has no family or given parts,
// by one rule: "DOE, Jane Q" is family before the comma and given after; a name in
// Chinese, Japanese or Korean script is kept whole as the family name (its order and
// spacing say nothing reliable); otherwise the last word is the family name, with the
// particles before it ("de la Cruz"), and the words before are the given names.
// Titles and suffixes (Dr., Jr., III) are dropped. A single word is a family name.
func splitNameText(text string) (family, given string) {
	if f, g, ok := strings.Cut(text, ","); ok {
		return strings.Join(nameWords(f), " "), strings.Join(nameWords(g), " ")
	}
	if strings.IndexFunc(text, isCJK) >= 0 {
		return text, ""
	}
	w := nameWords(text)
	if len(w) == 0 {
		return "", ""
	}
	i := len(w) - 1
	for i > 1 && surnameParticles[strings.ToLower(w[i-1])] {
		i--
	}
	return strings.Join(w[i:], " "), strings.Join(w[:i], " ")
}

// nameWords returns the words of a name without titles and suffixes.
func nameWords(s string) []string {
	var out []string
	for _, w := range strings.Fields(s) {
		if !nameAffixes[strings.ToLower(strings.TrimSuffix(w, "."))] {
			out = append(out, w)
		}
	}
	return out
}

// isCJK reports whether r is a Han, Hiragana, Katakana or Hangul letter.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// mrn picks the medical record number: with a system, the identifier of that system
// (an urn:oid: prefix is ignored); otherwise the identifier typed "MR" (HL7 v2 table
// 0203), else the one whose system names an MRN, else the first.
func (fp fhirPatient) mrn(system string) string {
	if system = strings.TrimPrefix(strings.TrimSpace(system), "urn:oid:"); system != "" {
		for _, id := range fp.Identifier {
			if strings.EqualFold(strings.TrimPrefix(id.System, "urn:oid:"), system) && id.Value != "" {
				return id.Value
			}
		}
		return ""
	}
	for _, id := range fp.Identifier {
		for _, c := range id.Type.Coding {
			if c.Code == "MR" && id.Value != "" {
				return id.Value
			}
		}
	}
	for _, id := range fp.Identifier {
		if strings.Contains(strings.ToLower(id.System), "mrn") && id.Value != "" {
			return id.Value
		}
	}
	for _, id := range fp.Identifier {
		if id.Value != "" {
			return id.Value
		}
	}
	return ""
}
