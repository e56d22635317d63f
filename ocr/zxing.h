// A C interface to zxing-cpp 1.4 (libzxing-dev) for barcode.go: cgo cannot call C++.
#include <stddef.h>

// cs_barcode is one barcode zxing-cpp found.
typedef struct {
	int format;     // its ZXing::BarcodeFormat bit
	char *text;     // its value as UTF-8, not NUL-terminated (a value may hold NULs)
	int len;        // bytes in text
	int x[4], y[4]; // its corners: top left, top right, bottom right, bottom left
} cs_barcode;

// cs_read_barcodes finds every barcode of the formats (ZXing::BarcodeFormat bits) in an
// 8-bit grey image and stores them in a malloc'd array at *out for cs_free_barcodes. The
// flags are zxing-cpp's DecodeHints of the same names. It returns how many it found, or
// -1 when zxing-cpp failed (out of memory).
int cs_read_barcodes(const unsigned char *grey, int width, int height, int stride, int formats,
                     int try_harder, int try_rotate, int try_downscale, cs_barcode **out);

void cs_free_barcodes(cs_barcode *bs, int n);
