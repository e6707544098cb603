//! A component that exports `greet` instead of Hookgate's `transform`.
#![allow(unsafe_code)] // wit-bindgen's generated export glue

wit_bindgen::generate!({
    inline: r"
        package test:other;
        world greeter {
            export greet: func(name: string) -> string;
        }
    ",
});

#[derive(Debug)]
struct Greeter;

impl Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello {name}")
    }
}

export!(Greeter);
