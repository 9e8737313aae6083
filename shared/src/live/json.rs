//! A JSON writer just big enough for `/stats.json`: objects, arrays,
//! numbers, strings and `null`. The servers may use only std and a few
//! crates (README), and a writer of fixed shapes is a screenful.

/// JSON text under construction. Commas are placed by remembering, per
/// open object or array, whether it has a member yet.
#[derive(Debug, Default)]
pub struct Json {
    text: String,
    /// One entry per open object or array: its closing character, and
    /// whether it has a member already.
    open: Vec<(char, bool)>,
}

impl Json {
    /// A writer whose document is one object, already opened.
    pub fn object() -> Json {
        let mut json = Json::default();
        json.opening('{', '}');
        json
    }

    /// Closes every object and array still open and returns the text.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.text
    }

    fn opening(&mut self, open: char, close: char) {
        self.text.push(open);
        self.open.push((close, false));
    }

    fn close(&mut self) {
        if let Some((close, _)) = self.open.pop() {
            self.text.push(close);
        }
    }

    fn separate(&mut self) {
        if let Some((_, has_member)) = self.open.last_mut() {
            if *has_member {
                self.text.push(',');
            }
            *has_member = true;
        }
    }

    fn key(&mut self, name: &str) {
        self.separate();
        self.string_value(name);
        self.text.push(':');
    }

    fn string_value(&mut self, value: &str) {
        self.text.push('"');
        for c in value.chars() {
            match c {
                '"' => self.text.push_str("\\\""),
                '\\' => self.text.push_str("\\\\"),
                c if (c as u32) < 0x20 => self.text.push_str(&format!("\\u{:04x}", c as u32)),
                c => self.text.push(c),
            }
        }
        self.text.push('"');
    }

    pub fn number(&mut self, name: &str, value: u64) -> &mut Self {
        self.key(name);
        self.text.push_str(&value.to_string());
        self
    }

    /// A fraction, to three decimals: finer would be noise.
    pub fn fraction(&mut self, name: &str, value: f64) -> &mut Self {
        self.key(name);
        self.text.push_str(&format!("{value:.3}"));
        self
    }

    /// A number, or `null` when there is none to give.
    pub fn maybe(&mut self, name: &str, value: Option<u64>) -> &mut Self {
        match value {
            Some(value) => self.number(name, value),
            None => {
                self.key(name);
                self.text.push_str("null");
                self
            }
        }
    }

    pub fn string(&mut self, name: &str, value: &str) -> &mut Self {
        self.key(name);
        self.string_value(value);
        self
    }

    pub fn begin_object(&mut self, name: &str) -> &mut Self {
        self.key(name);
        self.opening('{', '}');
        self
    }

    /// An object as the next element of the array that is open.
    pub fn begin_element(&mut self) -> &mut Self {
        self.separate();
        self.opening('{', '}');
        self
    }

    pub fn end_object(&mut self) -> &mut Self {
        self.close();
        self
    }

    pub fn begin_array(&mut self, name: &str) -> &mut Self {
        self.key(name);
        self.opening('[', ']');
        self
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.close();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_objects_arrays_and_escapes() {
        let mut json = Json::object();
        json.number("a", 1).string("s", "q\"\\\n").maybe("n", None);
        json.begin_object("o").fraction("f", 0.5).end_object();
        json.begin_array("l");
        json.begin_element().number("x", 1).end_object();
        json.begin_element().number("x", 2).end_object();
        json.end_array();
        assert_eq!(
            json.finish(),
            r#"{"a":1,"s":"q\"\\\u000a","n":null,"o":{"f":0.500},"l":[{"x":1},{"x":2}]}"#
        );
    }
}
