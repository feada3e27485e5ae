#include "cli/table.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace workq::cli {
std::size_t display_width(std::string_view text) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\x1b') {
            while (i < text.size() && text[i] != 'm')
                ++i;
            continue;
        }
        if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) ++count;
    }
    return count;
}

std::string cut_to_width(std::string_view text, std::size_t width) {
    if (display_width(text) <= width) return std::string(text);
    std::string out;
    if (width == 0) return out;
    std::size_t count = 0;
    bool coloured = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\x1b') {
            auto end = text.find('m', i);
            if (end == std::string_view::npos) break;
            out.append(text.substr(i, end - i + 1));
            coloured = true;
            i = end;
            continue;
        }
        bool starts_character = (static_cast<unsigned char>(text[i]) & 0xc0) != 0x80;
        if (starts_character && count == width - 1) break;  // room for "…" alone
        if (starts_character) ++count;
        out += text[i];
    }
    out += "…";
    if (coloured) out += "\x1b[0m";
    return out;
}

bool use_colour() {
    static const bool colour = [] {
        if (std::getenv("NO_COLOR") && *std::getenv("NO_COLOR")) return false;
        const char* term = std::getenv("TERM");
        if (term && std::strcmp(term, "dumb") == 0) return false;
        return ::isatty(STDOUT_FILENO) == 1;
    }();
    return colour;
}

bool stdout_is_terminal() {
    static const bool terminal = ::isatty(STDOUT_FILENO) == 1;
    return terminal;
}

std::string paint(const std::string& text, Tone tone) {
    if (!use_colour() || tone == Tone::plain) return text;
    const char* code = tone == Tone::good   ? "32"
                       : tone == Tone::warn ? "33"
                       : tone == Tone::bad  ? "31"
                                            : "2";
    return std::string("\x1b[") + code + "m" + text + "\x1b[0m";
}

Table::Table(std::vector<std::string> headers, std::vector<bool> right_aligned)
    : headers_(std::move(headers)), right_(std::move(right_aligned)) {
    right_.resize(headers_.size(), false);
}

void Table::add(std::vector<std::string> cells) {
    cells.resize(headers_.size());
    rows_.push_back(std::move(cells));
}

std::string Table::render(Header header, std::size_t max_width) const {
    std::vector<std::size_t> widths(headers_.size());
    for (std::size_t c = 0; c < headers_.size(); ++c) {
        widths[c] = header == Header::shown ? display_width(headers_[c]) : 0;
        for (const auto& row : rows_)
            widths[c] = std::max(widths[c], display_width(row[c]));
    }
    std::vector<std::size_t> shown;
    for (std::size_t c = 0; c < headers_.size(); ++c)
        shown.push_back(c);
    auto total = [&] {
        std::size_t sum = 0;
        for (auto c : shown)
            sum += widths[c];
        return sum + 2 * (shown.empty() ? 0 : shown.size() - 1);
    };
    for (auto column : drop_order_) {
        if (max_width == 0 || total() <= max_width) break;
        std::erase(shown, column);
    }
    std::string out;
    auto line = [&](const std::vector<std::string>& cells, bool is_header) {
        std::string text;
        for (std::size_t i = 0; i < shown.size(); ++i) {
            auto c = shown[i];
            std::string pad(widths[c] - display_width(cells[c]), ' ');
            bool last = i + 1 == shown.size();
            if (right_[c])
                text += pad + cells[c];
            else
                text += cells[c] + (last ? "" : pad);
            if (!last) text += "  ";
        }
        while (!text.empty() && text.back() == ' ')
            text.pop_back();
        if (max_width > 0) text = cut_to_width(text, max_width);
        out += (is_header ? paint(text, Tone::dim) : text) + "\n";
    };
    if (header == Header::shown) line(headers_, true);
    for (const auto& row : rows_)
        line(row, false);
    return out;
}

}  // namespace workq::cli
