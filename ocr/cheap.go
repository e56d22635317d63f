package ocr

// #include <malloc.h>
import "C"

// CHeapInUse returns the bytes the C allocator has handed out and not had back (glibc's
// mallinfo2): the memory of Tesseract and Leptonica, which the Go runtime neither sees
// nor collects. A worker that reads page after page must keep it flat.
func CHeapInUse() int64 { return int64(C.mallinfo2().uordblks) }
