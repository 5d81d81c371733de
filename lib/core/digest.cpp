// Message digests as lowercase hex over OpenSSL's EVP interface.
#include "core/digest.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud::detail {

Digest::Digest(const char* algorithm) : ctx_(EVP_MD_CTX_new()), algorithm_(algorithm) {
    const EVP_MD* md = EVP_get_digestbyname(algorithm);
    if (ctx_ == nullptr || md == nullptr || EVP_DigestInit_ex(ctx_, md, nullptr) != 1) {
        EVP_MD_CTX_free(ctx_);
        throw Error(fmt::format("OpenSSL cannot compute {} digests", algorithm_));
    }
}

Digest::~Digest() {
    EVP_MD_CTX_free(ctx_);
}

void Digest::update(const void* data, std::size_t size) {
    if (EVP_DigestUpdate(ctx_, data, size) != 1)
        throw Error(fmt::format("OpenSSL {} digest update failed", algorithm_));
}

std::string Digest::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_, md, &len) != 1)
        throw Error(fmt::format("OpenSSL {} digest failed", algorithm_));
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

std::string hex_digest(const char* algorithm, std::string_view data) {
    Digest d(algorithm);
    d.update(data);
    return d.hex();
}

std::string hex_to_base64(std::string_view hex) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (hex.size() % 2 != 0) return {};
    std::string bytes;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) return {};
        bytes += static_cast<char>(hi * 16 + lo);
    }
    return base64(bytes);
}

std::string base64(std::string_view bytes) {
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? table[v & 63] : '=';
    }
    return out;
}

std::optional<std::string> file_hex_digest(const char* algorithm, const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw SystemError(errno, "open", path);
    }
    Digest d(algorithm);
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            throw SystemError(err, "read", path);
        }
        if (n == 0) break;
        d.update(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return d.hex();
}

namespace {

std::string to_hex(const unsigned char* data, std::size_t size) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out += digits[data[i] >> 4];
        out += digits[data[i] & 15];
    }
    return out;
}

}  // namespace

std::string hex_hmac(const char* algorithm, std::string_view key, std::string_view data) {
    const EVP_MD* md = EVP_get_digestbyname(algorithm);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (md == nullptr ||
        HMAC(md, key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size) == nullptr)
        throw Error(fmt::format("OpenSSL cannot compute {} HMACs", algorithm));
    return to_hex(out, size);
}

bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
        throw Error("the system's random generator failed");
    return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

}  // namespace apcloud::detail
