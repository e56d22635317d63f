#include "prep.h"

// cs_normalize returns a 1 bpp or 8 bpp grey copy of pixs scaled by factor. Bilevel
// scans stay bilevel unless scaled (then grey, so that strokes are interpolated rather
// than sampled); everything else — colour, colormapped, 2/4/16 bpp — becomes 8 bpp grey.
PIX *cs_normalize(PIX *pixs, float factor) {
	PIX *p8, *out;
	int d = pixGetDepth(pixs);
	if (d == 1 && factor == 1.0f) return pixCopy(NULL, pixs);
	if (d == 1 && factor < 1.0f) return pixScaleToGray(pixs, factor);
	if (d == 32) p8 = pixConvertRGBToLuminance(pixs);
	else p8 = pixConvertTo8(pixs, 0);
	if (p8 == NULL) return NULL;
	if (factor == 1.0f) return p8;
	out = pixScale(p8, factor, factor);
	pixDestroy(&p8);
	return out;
}

// cs_binarize returns a 1 bpp image of pix: dark is on.
PIX *cs_binarize(PIX *pix) {
	if (pixGetDepth(pix) == 1) return pixClone(pix);
	return pixConvertTo1(pix, 128);
}

// cs_ink measures a bilevel page's central area (a margin of 8% each side, at least half
// an inch, left out: scanner edges, punch holes and staples live there): the share of
// dark pixels and, when that share is under count_below (only such a page may be blank),
// the number of connected components the size of printed characters.
void cs_ink(PIX *pix1, int dpi, float count_below, float *ink, int *textlike) {
	int w = pixGetWidth(pix1), h = pixGetHeight(pix1), n = 0, i, count = 0;
	int mx = w * 8 / 100, my = h * 8 / 100;
	*ink = 0; *textlike = 0;
	if (mx < dpi / 2) mx = dpi / 2;
	if (my < dpi / 2) my = dpi / 2;
	if (w - 2 * mx < w / 3) mx = w / 3;
	if (h - 2 * my < h / 3) my = h / 3;
	BOX *box = boxCreate(mx, my, w - 2 * mx, h - 2 * my);
	PIX *c = pixClipRectangle(pix1, box, NULL);
	boxDestroy(&box);
	if (c == NULL) return;
	pixCountPixels(c, &count, NULL);
	*ink = (float)count / ((float)pixGetWidth(c) * pixGetHeight(c));
	if (*ink < count_below) { // a page with more ink is not blank: no component count
		BOXA *boxa = pixConnCompBB(c, 8);
		int minh = dpi * 4 / 100, maxh = dpi / 2, minw = dpi / 100, maxw = dpi;
		if (minh < 3) minh = 3;
		if (minw < 1) minw = 1;
		for (i = 0; boxa && i < boxaGetCount(boxa); i++) {
			int bx, by, bw, bh;
			boxaGetBoxGeometry(boxa, i, &bx, &by, &bw, &bh);
			if (bh >= minh && bh <= maxh && bw >= minw && bw <= maxw) n++;
		}
		boxaDestroy(&boxa);
		*textlike = n;
	} else {
		*textlike = -1; // not counted
	}
	pixDestroy(&c);
}

// cs_gray_bytes copies an 8 bpp image's samples, or a 1 bpp image's pixels as 0 (black)
// and 255, row by row into dst (w*h bytes), undoing Leptonica's word-order storage.
void cs_gray_bytes(PIX *pix, unsigned char *dst) {
	int w = pixGetWidth(pix), h = pixGetHeight(pix), wpl = pixGetWpl(pix), x, y;
	int bilevel = pixGetDepth(pix) == 1;
	l_uint32 *data = pixGetData(pix);
	for (y = 0; y < h; y++) {
		l_uint32 *line = data + y * wpl;
		unsigned char *d = dst + (size_t)y * w;
		if (bilevel) {
			// Eight pixels a byte; Leptonica keeps bit 7 of byte 0 leftmost.
			for (x = 0; x + 8 <= w; x += 8) {
				int b = GET_DATA_BYTE(line, x / 8), k;
				for (k = 0; k < 8; k++) d[x + k] = (b & (0x80 >> k)) ? 0 : 255;
			}
			for (; x < w; x++) d[x] = GET_DATA_BIT(line, x) ? 0 : 255;
		} else
			for (x = 0; x < w; x++) d[x] = GET_DATA_BYTE(line, x);
	}
}

// cs_deskew rotates pix by deg degrees (as pixDeskew does with the angle pixFindSkew
// reports), keeping its size and bringing in white: a bilevel page by three shears, a
// grey one by area mapping. Shears cost a grey 300 dpi page a quarter as much (30
// against 105 ms) and read printed text the same, but they misread a handwritten birth
// date of TestRenderedLayouts' script page that area mapping reads right.
PIX *cs_deskew(PIX *pix, float deg) {
	float rad = deg * 3.14159265f / 180.0f;
	if (pixGetDepth(pix) == 1)
		return pixRotate(pix, rad, L_ROTATE_SHEAR, L_BRING_IN_WHITE, 0, 0);
	return pixRotate(pix, rad, L_ROTATE_AREA_MAP, L_BRING_IN_WHITE, 0, 0);
}

// cs_osd runs Tesseract's orientation detection on pix. It returns 0 when Tesseract
// finds too little text to decide.
int cs_osd(TessBaseAPI *api, PIX *pix, int dpi, int *orient_deg, float *orient_conf) {
	float script_conf = 0;
	int ok;
	// Orientation needs only the shapes of letters, which survive half the resolution:
	// at 300 dpi OSD on the full page cost 13% of a page's OCR, a quarter of that here.
	PIX *small = NULL;
	if (dpi >= 250) {
		small = pixScale(pix, 0.5, 0.5);
	}
	if (small != NULL) {
		TessBaseAPISetImage2(api, small);
		TessBaseAPISetSourceResolution(api, dpi / 2);
	} else {
		TessBaseAPISetImage2(api, pix);
		TessBaseAPISetSourceResolution(api, dpi);
	}
	// No script name: capi.h says to free it with TessDeleteText, but Tesseract 5 hands
	// back a pointer into its unicharset, and freeing that corrupts the heap.
	ok = TessBaseAPIDetectOrientationScript(api, orient_deg, orient_conf, NULL, &script_conf);
	TessBaseAPIClear(api);
	if (small != NULL) {
		pixDestroy(&small);
	}
	return ok;
}
