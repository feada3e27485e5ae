#include "output.hpp"

#include "util/log.hpp"

namespace workq::work {

void Tail::append(std::string_view chunk) {
    if (chunk.size() >= limit_) {
        bytes_.assign(chunk.substr(chunk.size() - limit_));
        return;
    }
    bytes_.append(chunk);
    if (bytes_.size() > 2 * limit_) bytes_.erase(0, bytes_.size() - limit_);
}

std::string Tail::text() const {
    if (bytes_.size() <= limit_) return bytes_;
    return bytes_.substr(bytes_.size() - limit_);
}

StderrRelay::StderrRelay()
    : sink_([](std::string_view tag, std::string_view line) { log::relay(tag, line); }) {}

void StderrRelay::feed(std::string_view chunk, std::string_view tag) {
    partial_.append(chunk);
    std::size_t start = 0;
    for (;;) {
        auto newline = partial_.find('\n', start);
        if (newline == std::string::npos) break;
        // A line longer than the bound goes in pieces even when its newline came with it.
        while (newline - start > longest_relayed_line) {
            sink_(tag, std::string_view(partial_).substr(start, longest_relayed_line));
            start += longest_relayed_line;
        }
        sink_(tag, std::string_view(partial_).substr(start, newline - start));
        start = newline + 1;
    }
    // Strictly longer: a line of exactly the bound may have its newline in the next read (sent
    // now, that newline would end an extra empty line).
    while (partial_.size() - start > longest_relayed_line) {
        sink_(tag, std::string_view(partial_).substr(start, longest_relayed_line));
        start += longest_relayed_line;
    }
    partial_.erase(0, start);
}

void StderrRelay::flush(std::string_view tag) {
    if (!partial_.empty()) sink_(tag, partial_);
    partial_.clear();
}

void BoundedText::append(std::string_view chunk) {
    std::size_t room = limit > text.size() ? limit - text.size() : 0;
    std::size_t kept = std::min(room, chunk.size());
    text.append(chunk.substr(0, kept));
    dropped += chunk.size() - kept;
}

std::size_t cut_to(std::string& text, std::size_t limit) {
    if (text.size() <= limit) return 0;
    auto cut = text.size() - limit;
    text.resize(limit);
    return cut;
}

}  // namespace workq::work
