// Package synth generates visibly synthetic scanned chart pages, image-only PDFs and their
// ground truth from public fake identities, for tests, demos and benchmarks.
//
// Every page carries the banner "SYNTHETIC TEST RECORD — NOT A REAL PATIENT" and a
// fictional hospital. Identities come from Splink's fake_1000 (MIT, see
// testdata/identities/splink); text is drawn with the Go fonts (BSD, from
// golang.org/x/image/font/gofont). Output is deterministic for a given seed: the same
// Options and people give byte-identical PDFs, truth.json and empi.csv.
//
// Generate writes into its output directory:
//
//	chart-NNN.pdf  one scanner-like PDF per document: every page is exactly one image
//	truth.json     Truth: per page the MRN of the patient it belongs to, whether that
//	               patient is in the EMPI, the page kind, document type, date of service
//	               (YYYY-MM-DD) and the clockwise rotation applied to the scan; for the
//	               benchmark kinds also the MRN printed instead, the near twin's MRN and
//	               whether a noisier variant of the identity was printed; the page's
//	               layout family (LayoutNames) and the page number as printed
//	empi.csv       mrn,family,given,birth_date,sex,street,city,postcode,state,phone
//
// For the matching benchmark at scale, Population streams a big synthetic EMPI without
// rendering anything, and Perturb turns one of its patients into what OCR of their chart
// might read.
package synth
