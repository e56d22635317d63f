// Leptonica and Tesseract C helpers for page preparation (see prepare.go).
#include <stdlib.h>
#include <leptonica/allheaders.h>
#include <tesseract/capi.h>

PIX *cs_normalize(PIX *pixs, float factor);
PIX *cs_binarize(PIX *pix);
void cs_ink(PIX *pix1, int dpi, float count_below, float *ink, int *textlike);
void cs_gray_bytes(PIX *pix8, unsigned char *dst);
PIX *cs_deskew(PIX *pix, float deg);
int cs_osd(TessBaseAPI *api, PIX *pix, int dpi, int *orient_deg, float *orient_conf);
