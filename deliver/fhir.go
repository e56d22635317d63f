package deliver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// FHIR code systems and values the builders use.
const (
	loincSystem      = "http://loinc.org"
	identifierTypeCS = "http://terminology.hl7.org/CodeSystem/v2-0203"
	formatCodeSystem = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
	// mimeTypeSufficient is IHE's format code for a document whose MIME type says all a
	// reader needs (a PDF).
	mimeTypeSufficient = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
	pdfType            = "application/pdf"
	jsonPatchType      = "application/json-patch+json"
)

// FHIR R4 DocumentReference.status values.
const (
	StatusCurrent        = "current"
	StatusSuperseded     = "superseded"
	StatusEnteredInError = "entered-in-error"
)

type coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

type codeableConcept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type identifier struct {
	Use    string           `json:"use,omitempty"`
	Type   *codeableConcept `json:"type,omitempty"`
	System string           `json:"system,omitempty"`
	Value  string           `json:"value"`
}

type reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

type binary struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id,omitempty"`
	ContentType  string `json:"contentType"`
	Data         string `json:"data"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	Data        string `json:"data,omitempty"`
	URL         string `json:"url,omitempty"`
	Size        int    `json:"size"`
	Hash        string `json:"hash"`
	Title       string `json:"title,omitempty"`
	Creation    string `json:"creation,omitempty"`
}

type content struct {
	Attachment attachment `json:"attachment"`
	Format     *coding    `json:"format,omitempty"`
}

type relatesTo struct {
	Code   string    `json:"code"`
	Target reference `json:"target"`
}

type period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

type docContext struct {
	Period *period `json:"period,omitempty"`
}

type documentReference struct {
	ResourceType     string           `json:"resourceType"`
	ID               string           `json:"id,omitempty"`
	MasterIdentifier identifier       `json:"masterIdentifier"`
	Status           string           `json:"status"`
	DocStatus        string           `json:"docStatus"`
	Type             *codeableConcept `json:"type,omitempty"`
	Subject          reference        `json:"subject"`
	Date             string           `json:"date"`
	Custodian        *reference       `json:"custodian,omitempty"`
	RelatesTo        []relatesTo      `json:"relatesTo,omitempty"`
	Description      string           `json:"description,omitempty"`
	Content          []content        `json:"content"`
	Context          *docContext      `json:"context,omitempty"`
}

type bundleRequest struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	IfNoneExist string `json:"ifNoneExist,omitempty"`
}

type bundleEntry struct {
	FullURL  string        `json:"fullUrl"`
	Resource any           `json:"resource"`
	Request  bundleRequest `json:"request"`
}

type bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Entry        []bundleEntry `json:"entry"`
}

// FHIRBundle returns the FHIR R4 transaction Bundle that delivers d:
//
//   - with binaryByReference, a Binary holding the PDF (PUT Binary/<id>, its id fixed by
//     the document number, so sending the bundle again writes the same Binary and leaves
//     no orphan) and a DocumentReference whose attachment's url is the Binary's fullUrl
//     (urn:uuid:…, which the server rewrites to the Binary it stored); without, only
//     the DocumentReference, the PDF in its attachment's data;
//   - the DocumentReference created conditionally on its masterIdentifier (ifNoneExist
//     identifier=system|number), so a repeated delivery never makes a second one;
//   - for a replacement, a conditional PATCH (a JSON Patch in a Binary) setting the
//     replaced DocumentReference's status to superseded, or entered-in-error when
//     d.Replaces.EnteredInError, and relatesTo replaces on the new one. The replaced
//     document must have been delivered: a PATCH that finds it not fails the transaction.
//
// The DocumentReference: status current, docStatus final, masterIdentifier the document
// number in the document system, type the LOINC code of d's type (text only for an
// unknown type), subject a logical reference by the MRN identifier (type MR) in its
// system, date and attachment.creation when d was created, context.period the date of
// service, custodian the facility by its OID, one content with the PDF's contentType,
// size, SHA-1 hash (Base64) and a title of type and date.
func FHIRBundle(d Document, binaryByReference bool) ([]byte, error) {
	dr, bin, err := d.fhirResources(binaryByReference)
	if err != nil {
		return nil, err
	}
	b := bundle{ResourceType: "Bundle", Type: "transaction"}
	if r := d.Replaces; r.ID != "" {
		status := StatusSuperseded
		if r.EnteredInError {
			status = StatusEnteredInError
		}
		patch, _ := json.Marshal([]map[string]string{{"op": "replace", "path": "/status", "value": status}})
		b.Entry = append(b.Entry, bundleEntry{
			FullURL:  "urn:uuid:" + d.uuidFor("patch:"+r.Number()),
			Resource: binary{ResourceType: "Binary", ContentType: jsonPatchType, Data: base64.StdEncoding.EncodeToString(patch)},
			Request:  bundleRequest{Method: "PATCH", URL: "DocumentReference?" + d.identifierQuery(r.Number())},
		})
	}
	if bin != nil {
		b.Entry = append(b.Entry, bundleEntry{
			FullURL:  "urn:uuid:" + bin.ID,
			Resource: bin,
			Request:  bundleRequest{Method: "PUT", URL: "Binary/" + bin.ID},
		})
		dr.Content[0].Attachment.URL = "urn:uuid:" + bin.ID
	}
	b.Entry = append(b.Entry, bundleEntry{
		FullURL:  "urn:uuid:" + d.uuidFor("DocumentReference"),
		Resource: dr,
		Request:  bundleRequest{Method: "POST", URL: "DocumentReference", IfNoneExist: d.identifierQuery(d.Number())},
	})
	return marshal(b)
}

// FHIRNDJSON returns d's resources as FHIR NDJSON, one resource a line (chartscan export
// --format fhir): with binaryByReference the Binary, then the DocumentReference whose
// attachment url is Binary/<id>; without, the DocumentReference alone with the PDF in
// its data. Both carry ids fixed by the document number, so exporting again gives the
// same lines. A replacement's DocumentReference says what it replaces (relatesTo); the
// replaced one's new status is not in the export.
func FHIRNDJSON(d Document, binaryByReference bool) ([]byte, error) {
	dr, bin, err := d.fhirResources(binaryByReference)
	if err != nil {
		return nil, err
	}
	dr.ID = d.uuidFor("DocumentReference")
	var out []byte
	if bin != nil {
		dr.Content[0].Attachment.URL = "Binary/" + bin.ID
		line, err := marshal(bin)
		if err != nil {
			return nil, err
		}
		out = append(append(out, line...), '\n')
	}
	line, err := marshal(dr)
	if err != nil {
		return nil, err
	}
	return append(append(out, line...), '\n'), nil
}

// FHIRWithdraw returns a transaction Bundle that marks the delivered document r
// entered-in-error (superseded when !r.EnteredInError), with no replacement: a
// conditional PATCH on its masterIdentifier. facility gives the document system.
func FHIRWithdraw(r Replaced, facility Facility) ([]byte, error) {
	if !idPattern.MatchString(r.ID) || r.Version < 1 {
		return nil, invalid("the withdrawn document needs an id and a version of 1 or more")
	}
	d := Document{ID: r.ID, Version: r.Version, Facility: facility}
	if _, ok := fhirSystem(d.documentSystem()); !ok {
		return nil, invalid("the document system is not a URI or an OID")
	}
	status := StatusSuperseded
	if r.EnteredInError {
		status = StatusEnteredInError
	}
	patch, _ := json.Marshal([]map[string]string{{"op": "replace", "path": "/status", "value": status}})
	return marshal(bundle{ResourceType: "Bundle", Type: "transaction", Entry: []bundleEntry{{
		FullURL:  "urn:uuid:" + d.uuidFor("withdraw"),
		Resource: binary{ResourceType: "Binary", ContentType: jsonPatchType, Data: base64.StdEncoding.EncodeToString(patch)},
		Request:  bundleRequest{Method: "PATCH", URL: "DocumentReference?" + d.identifierQuery(r.Number())},
	}}})
}

// identifierQuery is the search for the DocumentReference of a document number:
// identifier=system|number, URL-encoded.
func (d Document) identifierQuery(number string) string {
	sys, _ := fhirSystem(d.documentSystem())
	return url.Values{"identifier": {sys + "|" + number}}.Encode()
}

// fhirResources builds d's DocumentReference and, with binaryByReference, its Binary
// (with an id; the attachment's url is left for the caller, who knows how the Binary is
// reached).
func (d Document) fhirResources(binaryByReference bool) (*documentReference, *binary, error) {
	if err := d.validate(); err != nil {
		return nil, nil, err
	}
	mrnSystem, ok := fhirSystem(d.mrnSystem())
	if !ok {
		if d.mrnSystem() == "" {
			return nil, nil, invalid("no MRN system: FHIR needs the system of the MRN (a URI or an OID)")
		}
		return nil, nil, invalid("the MRN system is not a URI or an OID: FHIR needs one (set the facility's MRN system to its urn:oid: or https: form)")
	}
	docSystem, ok := fhirSystem(d.documentSystem())
	if !ok {
		return nil, nil, invalid("the document system is not a URI or an OID")
	}
	pdf := d.pdfFacts()
	created := fhirInstant(d.Created)
	dr := &documentReference{
		ResourceType:     "DocumentReference",
		MasterIdentifier: identifier{System: docSystem, Value: d.Number()},
		Status:           StatusCurrent,
		DocStatus:        "final",
		Subject: reference{Type: "Patient", Identifier: &identifier{
			Use:    "usual",
			Type:   &codeableConcept{Coding: []coding{{System: identifierTypeCS, Code: "MR", Display: "Medical record number"}}},
			System: mrnSystem,
			Value:  strings.TrimSpace(d.Patient.MRN),
		}},
		Date:        created,
		Description: "Scanned paper record",
		Content: []content{{
			Attachment: attachment{ContentType: pdfType, Size: pdf.size, Hash: pdf.sha1, Title: d.title(), Creation: created},
			Format:     &coding{System: formatCodeSystem, Code: mimeTypeSufficient, Display: "mimeType Sufficient"},
		}},
	}
	if code, display, ok := LOINC(d.DocumentType); ok {
		dr.Type = &codeableConcept{Coding: []coding{{System: loincSystem, Code: code, Display: display}}, Text: display}
	} else {
		dr.Type = &codeableConcept{Text: unknownTypeText}
	}
	if oid := strings.TrimSpace(d.Facility.OID); oid != "" {
		dr.Custodian = &reference{Type: "Organization", Identifier: &identifier{System: "urn:ietf:rfc:3986", Value: "urn:oid:" + oid}, Display: strings.TrimSpace(d.Facility.Name)}
	}
	if d.DateOfService != "" {
		dr.Context = &docContext{Period: &period{Start: d.DateOfService, End: d.DateOfService}}
	}
	if r := d.Replaces; r.ID != "" {
		dr.RelatesTo = []relatesTo{{Code: "replaces", Target: reference{Type: "DocumentReference", Identifier: &identifier{System: docSystem, Value: r.Number()}}}}
	}
	if !binaryByReference {
		dr.Content[0].Attachment.Data = pdf.base64
		return dr, nil, nil
	}
	return dr, &binary{ResourceType: "Binary", ID: d.uuidFor("Binary"), ContentType: pdfType, Data: pdf.base64}, nil
}

// marshal encodes v as compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
