// tests/preload/programs/templates.cpp — template-heavy C++ that the preload suite compiles with
// g++ (the compiler runs preloaded) and then runs.
//
// How it works: compile-time work (a type list with map/filter/fold, constexpr tables, variadic
// tuples and std::variant visitation, CRTP, concepts) makes cc1plus instantiate many templates
// and allocate a lot; run-time work (a small expression tree, a generic matrix, standard
// containers) prints values that are known in advance and checked by the suite. The program
// prints only deterministic text.
#include <algorithm>
#include <array>
#include <concepts>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace meta {

template <class... Ts>
struct list {};

template <class L>
struct size;
template <class... Ts>
struct size<list<Ts...>> : std::integral_constant<std::size_t, sizeof...(Ts)> {};

template <template <class> class F, class L>
struct map;
template <template <class> class F, class... Ts>
struct map<F, list<Ts...>> {
  using type = list<typename F<Ts>::type...>;
};

template <class A, class B>
struct concat;
template <class... As, class... Bs>
struct concat<list<As...>, list<Bs...>> {
  using type = list<As..., Bs...>;
};

template <template <class> class P, class L>
struct filter;
template <template <class> class P>
struct filter<P, list<>> {
  using type = list<>;
};
template <template <class> class P, class T, class... Ts>
struct filter<P, list<T, Ts...>> {
  using rest = typename filter<P, list<Ts...>>::type;
  using type = std::conditional_t<P<T>::value, typename concat<list<T>, rest>::type, rest>;
};

template <class L>
struct total_size;
template <class... Ts>
struct total_size<list<Ts...>> : std::integral_constant<std::size_t, (sizeof(Ts) + ... + 0)> {};

template <class T>
struct add_pointer_f {
  using type = T*;
};
template <class T>
struct is_big : std::bool_constant<(sizeof(T) > 4)> {};

// A long list built by recursion: list<int_<0>, ..., int_<N-1>>.
template <int N>
struct int_ : std::integral_constant<int, N> {};
template <int N, class Acc = list<>>
struct iota;
template <class... Ts>
struct iota<0, list<Ts...>> {
  using type = list<Ts...>;
};
template <int N, class... Ts>
struct iota<N, list<Ts...>> {
  using type = typename iota<N - 1, list<int_<N - 1>, Ts...>>::type;
};

template <class L>
struct sum_values;
template <class... Ts>
struct sum_values<list<Ts...>> : std::integral_constant<long, (Ts::value + ... + 0L)> {};

template <class T>
struct is_even_int : std::bool_constant<T::value % 2 == 0> {};

}  // namespace meta

using basic = meta::list<char, short, int, long, double, long double, void*, std::int64_t>;
using pointers = meta::map<meta::add_pointer_f, basic>::type;
using big = meta::filter<meta::is_big, basic>::type;
using numbers = meta::iota<200>::type;
using evens = meta::filter<meta::is_even_int, numbers>::type;
static_assert(meta::size<pointers>::value == 8);
static_assert(meta::sum_values<numbers>::value == 199 * 200 / 2);
static_assert(meta::size<evens>::value == 100);

// constexpr tables.
template <std::size_t N>
constexpr std::array<std::uint64_t, N> fibonacci_table() {
  std::array<std::uint64_t, N> t{};
  t[0] = 0;
  if constexpr (N > 1) t[1] = 1;
  for (std::size_t i = 2; i < N; ++i) t[i] = t[i - 1] + t[i - 2];
  return t;
}
constexpr auto fib = fibonacci_table<90>();
static_assert(fib[10] == 55);

template <std::size_t N>
constexpr std::array<bool, N> sieve() {
  std::array<bool, N> prime{};
  for (auto& p : prime) p = true;
  prime[0] = prime[1] = false;
  for (std::size_t i = 2; i * i < N; ++i)
    if (prime[i])
      for (std::size_t j = i * i; j < N; j += i) prime[j] = false;
  return prime;
}
constexpr auto primes = sieve<2000>();
constexpr std::size_t prime_count() {
  std::size_t n = 0;
  for (bool p : primes) n += p;
  return n;
}
static_assert(prime_count() == 303);

// Concepts and a generic matrix.
template <class T>
concept arithmetic = std::integral<T> || std::floating_point<T>;

template <arithmetic T, std::size_t R, std::size_t C>
struct matrix {
  std::array<T, R * C> v{};
  constexpr T& operator()(std::size_t r, std::size_t c) { return v[r * C + c]; }
  constexpr const T& operator()(std::size_t r, std::size_t c) const { return v[r * C + c]; }
};

template <arithmetic T, std::size_t R, std::size_t K, std::size_t C>
constexpr matrix<T, R, C> operator*(const matrix<T, R, K>& a, const matrix<T, K, C>& b) {
  matrix<T, R, C> out;
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t c = 0; c < C; ++c) {
      T s{};
      for (std::size_t k = 0; k < K; ++k) s += a(r, k) * b(k, c);
      out(r, c) = s;
    }
  return out;
}

template <arithmetic T, std::size_t N>
constexpr matrix<T, N, N> identity() {
  matrix<T, N, N> m;
  for (std::size_t i = 0; i < N; ++i) m(i, i) = T{1};
  return m;
}

template <arithmetic T, std::size_t N>
constexpr matrix<T, N, N> power(matrix<T, N, N> base, unsigned e) {
  auto result = identity<T, N>();
  while (e) {
    if (e & 1) result = result * base;
    base = base * base;
    e >>= 1;
  }
  return result;
}

constexpr std::uint64_t fib_by_matrix(unsigned n) {
  matrix<std::uint64_t, 2, 2> q;
  q(0, 0) = 1;
  q(0, 1) = 1;
  q(1, 0) = 1;
  return power(q, n)(0, 1);
}
static_assert(fib_by_matrix(50) == fib[50]);

// CRTP counters.
template <class Derived>
struct counted {
  static inline int created = 0;
  counted() { ++created; }
  std::string describe() const {
    return static_cast<const Derived*>(this)->name() + "#" + std::to_string(created);
  }
};
struct apple : counted<apple> {
  std::string name() const { return "apple"; }
};
struct pear : counted<pear> {
  std::string name() const { return "pear"; }
};

// An expression tree with std::variant and std::visit.
struct expr;
using expr_ptr = std::shared_ptr<expr>;
struct num {
  long value;
};
struct add {
  expr_ptr l, r;
};
struct mul {
  expr_ptr l, r;
};
struct neg {
  expr_ptr e;
};
struct expr {
  std::variant<num, add, mul, neg> node;
};

template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

long evaluate(const expr& e) {
  return std::visit(overloaded{[](const num& n) { return n.value; },
                               [](const add& a) { return evaluate(*a.l) + evaluate(*a.r); },
                               [](const mul& m) { return evaluate(*m.l) * evaluate(*m.r); },
                               [](const neg& n) { return -evaluate(*n.e); }},
                    e.node);
}

std::string show(const expr& e) {
  return std::visit(
      overloaded{[](const num& n) { return std::to_string(n.value); },
                 [](const add& a) { return "(" + show(*a.l) + " + " + show(*a.r) + ")"; },
                 [](const mul& m) { return "(" + show(*m.l) + " * " + show(*m.r) + ")"; },
                 [](const neg& n) { return "-" + show(*n.e); }},
      e.node);
}

template <class T, class... Args>
expr_ptr make(Args&&... args) {
  return std::make_shared<expr>(expr{T{std::forward<Args>(args)...}});
}

// Variadic tuple utilities.
template <class Tuple, class F, std::size_t... I>
void for_each_impl(const Tuple& t, F&& f, std::index_sequence<I...>) {
  (f(std::get<I>(t)), ...);
}
template <class... Ts, class F>
void for_each(const std::tuple<Ts...>& t, F&& f) {
  for_each_impl(t, std::forward<F>(f), std::index_sequence_for<Ts...>{});
}

template <class... Ts>
auto sum_all(Ts... xs) {
  return (xs + ...);
}

// Generic algorithms over containers.
template <std::ranges::range R, class F>
auto map_to_vector(const R& r, F f) {
  std::vector<std::invoke_result_t<F, std::ranges::range_value_t<R>>> out;
  for (const auto& x : r) out.push_back(f(x));
  return out;
}

int main() {
  std::cout << "big types: " << meta::size<big>::value << "\n";
  std::cout << "total size of basic types: " << meta::total_size<basic>::value << "\n";
  std::cout << "fib(89): " << fib[89] << "\n";
  std::cout << "fib(80) by matrix: " << fib_by_matrix(80) << "\n";
  std::cout << "primes below 2000: " << prime_count() << "\n";

  apple a1, a2;
  pear p1;
  std::cout << a2.describe() << " " << p1.describe() << "\n";

  auto tree = make<add>(make<mul>(make<num>(6L), make<num>(7L)),
                        make<neg>(make<add>(make<num>(2L), make<num>(3L))));
  std::cout << show(*tree) << " = " << evaluate(*tree) << "\n";

  std::tuple<int, double, std::string, char> t{42, 2.5, "str", 'c'};
  std::string joined;
  for_each(t, [&joined](const auto& x) {
    if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>) {
      joined += x;
    } else {
      joined += std::to_string(x);
    }
    joined += ";";
  });
  std::cout << "tuple: " << joined << "\n";
  std::cout << "sum_all: " << sum_all(1, 2L, 3.5) << "\n";

  std::map<std::string, std::vector<int>> groups;
  std::unordered_map<int, std::set<int>> residues;
  for (int i = 0; i < 10000; ++i) {
    groups["g" + std::to_string(i % 7)].push_back(i);
    residues[i % 13].insert(i % 101);
  }
  auto sizes = map_to_vector(groups, [](const auto& kv) { return kv.second.size(); });
  std::cout << "group sizes:";
  for (auto s : sizes) std::cout << " " << s;
  std::cout << "\n";
  std::size_t residue_total = 0;
  for (const auto& [k, s] : residues) residue_total += s.size();
  std::cout << "residue pairs: " << residue_total << "\n";

  std::vector<long> values(1000);
  std::iota(values.begin(), values.end(), 1L);
  std::ranges::sort(values, std::greater<>{});
  std::cout << "sum 1..1000: " << std::accumulate(values.begin(), values.end(), 0L) << ", first "
            << values.front() << "\n";
  return 0;
}
