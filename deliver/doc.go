// Package deliver builds what chartscan sends an EHR for a patient document (issue 14,
// items 3 and 4): a FHIR R4 transaction Bundle with a DocumentReference and a Binary (or
// the same resources as NDJSON), and an HL7 v2.5.1 MDM message (T02 original, T10
// replacement, T11 cancel) carrying the PDF in an ED-typed OBX; and it reads the
// acknowledgement an interface engine answers an MDM message with.
//
// Everything here is a pure function of its arguments: no network, no clock, no
// database. The delivery stage (queue, retries, audit) is built on top of it.
//
// Errors never hold a value of the document: they name the field that is wrong, so they
// can be logged and shown to a records clerk without PHI.
package deliver
