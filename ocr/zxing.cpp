// The zxing-cpp side of zxing.h. Nothing may throw across the C boundary, so every
// exception zxing-cpp or the standard library raises becomes -1.
#define ZX_USE_UTF8 1 // 1.4's Result::text() is UTF-16 (std::wstring) without it

#include <ZXing/ReadBarcode.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "zxing.h"
}

namespace {

// shrink averages f×f blocks of src into dst, as zxing-cpp's own downscale pyramid does.
ZXing::ImageView shrink(const ZXing::ImageView &src, int f, std::vector<uint8_t> &dst)
{
	int w = src.width() / f, h = src.height() / f;
	dst.assign(static_cast<size_t>(w) * h, 0);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			int sum = 0;
			for (int dy = 0; dy < f; dy++) {
				const uint8_t *p = src.data(x * f, y * f + dy);
				for (int dx = 0; dx < f; dx++)
					sum += p[dx * src.pixStride()];
			}
			dst[static_cast<size_t>(y) * w + x] = static_cast<uint8_t>(sum / (f * f));
		}
	return {dst.data(), w, h, ZXing::ImageFormat::Lum};
}

// readLinear reads 1-D symbols at full size and down a pyramid of its own. zxing-cpp
// 1.4.0 asserts, and Debian builds it with assertions on, when its own pyramid finds a
// 1-D symbol again in a smaller layer (Result::operator== on a result read on several
// scan lines): the process aborts. A wide barcode, or one blurred by a fax, still reads
// better smaller, so the layers are read here one at a time and a symbol already found
// is dropped by its value, never compared with operator==.
ZXing::Results readLinear(const ZXing::ImageView &img, ZXing::DecodeHints hints, bool downscale)
{
	hints.setTryDownscale(false);
	ZXing::Results rs = ZXing::ReadBarcodes(img, hints);
	if (!downscale)
		return rs;
	const int f = hints.downscaleFactor(), threshold = hints.downscaleThreshold();
	ZXing::ImageView layer = img;
	std::vector<uint8_t> buf[2];
	for (int scale = f, i = 0; std::max(layer.width(), layer.height()) > threshold &&
	                           std::min(layer.width(), layer.height()) >= f;
	     scale *= f, i ^= 1) {
		layer = shrink(layer, f, buf[i]);
		for (auto &r : ZXing::ReadBarcodes(layer, hints)) {
			bool seen = std::any_of(rs.begin(), rs.end(), [&](const ZXing::Result &o) {
				return o.format() == r.format() && o.bytes() == r.bytes();
			});
			if (seen)
				continue;
			auto pos = r.position();
			for (auto &p : pos)
				p = scale * p;
			r.setPosition(pos);
			rs.push_back(std::move(r));
		}
	}
	return rs;
}

} // namespace

int cs_read_barcodes(const unsigned char *grey, int width, int height, int stride, int formats,
                     int try_harder, int try_rotate, int try_downscale, cs_barcode **out)
{
	*out = nullptr;
	try {
		ZXing::ImageView img(grey, width, height, ZXing::ImageFormat::Lum, stride);
		auto wanted = ZXing::BarcodeFormats(static_cast<ZXing::BarcodeFormat>(formats));
		auto hints = ZXing::DecodeHints().setTryHarder(try_harder).setTryRotate(try_rotate);
		auto linear = wanted & ZXing::BarcodeFormat::LinearCodes;
		auto matrix = wanted & ZXing::BarcodeFormat::MatrixCodes;
		ZXing::Results rs;
		if (!linear.empty())
			rs = readLinear(img, ZXing::DecodeHints(hints).setFormats(linear), try_downscale);
		if (!matrix.empty()) {
			auto more = ZXing::ReadBarcodes(img, ZXing::DecodeHints(hints).setFormats(matrix).setTryDownscale(try_downscale));
			rs.insert(rs.end(), more.begin(), more.end());
		}
		if (rs.empty())
			return 0;
		cs_barcode *bs = static_cast<cs_barcode *>(calloc(rs.size(), sizeof(cs_barcode)));
		if (!bs)
			return -1;
		int n = 0;
		for (const auto &r : rs) {
			std::string text = r.text();
			cs_barcode *b = &bs[n++];
			b->format = static_cast<int>(r.format());
			b->text = static_cast<char *>(malloc(text.size() + 1));
			if (!b->text) {
				cs_free_barcodes(bs, n);
				return -1;
			}
			memcpy(b->text, text.data(), text.size());
			b->len = static_cast<int>(text.size());
			const auto &p = r.position();
			for (int i = 0; i < 4; i++) {
				b->x[i] = p[i].x;
				b->y[i] = p[i].y;
			}
		}
		*out = bs;
		return n;
	} catch (...) {
		return -1;
	}
}

void cs_free_barcodes(cs_barcode *bs, int n)
{
	if (!bs)
		return;
	for (int i = 0; i < n; i++)
		free(bs[i].text);
	free(bs);
}
