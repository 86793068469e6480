#pragma once
// Whole-file writes that a crash never leaves half done (DESIGN.md, "Run directory"): the
// contents go to a fresh temp file beside the target, are fsync'ed, and the temp file is renamed
// over the target; then the folder is fsync'ed so the rename itself survives a power cut.
// Readers see the old file or the new one, never a mix.
#include <string>
#include <string_view>

namespace focaldet {

// Writes `contents` to `path` atomically. The temp file is `.<basename>.tmp.XXXXXX` in the
// target's folder, created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW), and removed on every
// error. An existing target keeps its permission bits; a new one gets 0666 minus the umask, as
// with fopen. Throws focaldet::Error naming the path when the file cannot be written, or when
// the path exists and is not a regular file (directory, symlink, FIFO, device): those are never
// replaced.
void write_file_atomic(const std::string& path, std::string_view contents);

// Removes the temp files (`.<name>.tmp.XXXXXX`) that writers killed mid-write left in `folder`
// (only call it on a folder this process owns, e.g. a run dir being resumed); returns how many.
int remove_stale_temp_files(const std::string& folder);

}  // namespace focaldet
