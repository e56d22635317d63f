// Package pdfa writes a patient document — pages already read by OCR — as one searchable
// PDF/A-2b file for the EHR and the archive (issue 14, item 2). There is no second OCR
// pass: each page is the upright image the worker stored with the words Tesseract read
// on it.
//
// Each page is the scan at its own size (pixels × 72 / DPI points) with the OCR words
// over it as invisible text (render mode 3), each word stretched to its box on its line's
// baseline, so a viewer's search and selection highlight the word where it is printed,
// and copied text reads as OCR read it. The image goes in as stored wherever a PDF filter
// reads that encoding — JPEG as DCTDecode, PNG data with its row filters as FlateDecode,
// one-strip G4 TIFF as CCITTFaxDecode — and is decoded and stored losslessly with Flate
// otherwise (interlaced or transparent PNG, CMYK JPEG, other TIFFs); building a page
// takes well under a millisecond when nothing needs decoding.
//
// PDF/A wants every font embedded, even one whose glyphs are never drawn: the text is in
// GlyphLessFont, the one-empty-glyph TrueType font Tesseract and OCRmyPDF use for the
// same purpose, built in font.go, with an identity ToUnicode map. The output intent is
// sRGB (sRGB.icc, from Debian's icc-profiles-free, zlib licence: sRGB.icc.LICENSE). The
// XMP packet claims pdfaid part 2, conformance B, and repeats the Info dictionary's
// title, subject, keywords, producer and dates; the document type, date of service and
// document id are in the Info dictionary and in XMP properties of chartscan's own
// namespace, described by a PDF/A extension schema. Nothing read on the pages goes into
// the metadata (see Meta).
//
// Validation. No PDF/A validator is packaged for Debian bookworm or published on npm
// (veraPDF, the reference validator, is Java distributed outside both), so the tests
// check the output with what is available: pdfcpu's validator in strict mode; the
// structure checks OCRmyPDF's test suite makes on its PDF/A output, done in Go
// (checkPDFA: XMP pdfaid part and conformance, one GTS_PDFA1 output intent with an RGB
// ICC profile, every font embedded, no encryption, Info and XMP in agreement, extension
// schemas for custom properties, no LZW, no interpolation, transparency or JavaScript);
// and OCRmyPDF's own code — pikepdf (qpdf) opens the file, reports no problems and reads
// pdfa_status "2B", and ocrmypdf.pdfa.file_claims_pdfa says "PDF/A-2B". poppler's
// pdftotext, pdfinfo, pdfimages and pdftoppm check the text, its positions, the
// metadata, the page sizes and the pixels. A file that passes all of these can still
// fail a rule only veraPDF checks; run veraPDF on a sample before relying on the claim
// in an archive audit.
package pdfa
