#include "payload_reader.hpp"

#include <poll.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

#include "util/errors.hpp"

namespace workq::enqueue {

namespace {
constexpr std::size_t read_size = 256 * 1024;
}

PayloadReader::PayloadReader(int fd, Framing framing, std::size_t max_payload)
    : fd_(fd), framing_(framing), max_payload_(max_payload), buffer_(read_size) {}

bool PayloadReader::fill() {
    if (eof_) return false;
    if (begin_ > 0) {  // keep the unfinished record at the front
        std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
    if (idle_hook_) {
        pollfd ready{fd_, POLLIN, 0};
        if (::poll(&ready, 1, 0) == 0) idle_hook_();
    }
    for (;;) {
        ssize_t got = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
        if (got > 0) {
            end_ += static_cast<std::size_t>(got);
            return true;
        }
        if (got == 0) {
            eof_ = true;
            return false;
        }
        if (errno != EINTR) throw Error(fmt::format("cannot read stdin: {}", std::strerror(errno)));
    }
}

PayloadReader::Status PayloadReader::next(std::string& out) {
    if (framing_ == Framing::whole) {
        if (whole_done_) return Status::end;
        whole_done_ = true;
        record_ = 1;
        out.clear();
        while (fill()) {
            out.append(buffer_.data() + begin_, end_ - begin_);
            begin_ = end_ = 0;
            if (out.size() > max_payload_) return Status::too_large;
        }
        return Status::payload;  // exactly one job, even when stdin was empty
    }
    const char separator = framing_ == Framing::nul ? '\0' : '\n';
    std::size_t scanned = 0;  // bytes of the current record already searched
    for (;;) {
        const char* start = buffer_.data() + begin_;
        const auto* found = static_cast<const char*>(
            std::memchr(start + scanned, separator, end_ - begin_ - scanned));
        if (found) {
            auto length = static_cast<std::size_t>(found - start);
            ++record_;
            if (length > max_payload_) return Status::too_large;
            begin_ += length + 1;
            scanned = 0;
            if (length == 0) continue;  // empty records are skipped
            out.assign(start, length);
            return Status::payload;
        }
        scanned = end_ - begin_;
        if (scanned > max_payload_) {
            ++record_;
            return Status::too_large;
        }
        if (!fill()) {  // end of input: a last record without its separator is a payload
            if (begin_ == end_) return Status::end;
            ++record_;
            out.assign(buffer_.data() + begin_, end_ - begin_);
            begin_ = end_;
            return Status::payload;
        }
    }
}

}  // namespace workq::enqueue
