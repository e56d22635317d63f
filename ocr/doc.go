// Package ocr turns scans into page images and page images into words: it splits PDFs
// (pdfcpu, with poppler's pdftoppm for pages that hold no single scan image), multi-page
// TIFFs, PNGs and JPEGs into pages, and reads each page with Tesseract through gosseract.
// Before OCR, Engine.Read decodes the page with Leptonica (any depth, CMYK, G3/G4),
// rescales it toward 300 dpi, skips it if blank, turns it upright with Tesseract's
// orientation detection, deskews it, and decodes its barcodes (zxing-cpp); cover sheets
// and separator sheets are told from those barcodes. It is the only package that uses
// cgo.
//
// Errors a clerk should see — an empty file, a file that is not a scan, a damaged or
// encrypted PDF, a page too large — are *chartscan.Error with code chartscan.EInvalid;
// anything else is an internal fault worth a retry. ErrImage and ErrCoverField are its
// sentinel errors.
package ocr
