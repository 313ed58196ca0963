"""tokenizers: the project's tokenizers against transformers' slow ones, on thousands of varied questions.

VLE: the real checkpoints (hfl/vle-base-for-vqa) ship only a DeBERTa-v3 `spm.model`; the exporter turns it into
tokenizer.json (vle.convert_spm_tokenizer), which the runtime loads with transformers.js. Upstream, VLEForVQAPipeline
tokenizes with transformers' slow `DebertaV2Tokenizer` (SentencePiece). BLIP: the hub checkpoint ships a
BertTokenizerFast tokenizer.json (bert-base-uncased's vocabulary) that the exporter copies; the reference is the slow
`BertTokenizer`.

The models are committed under test/fixtures/upstream/tokenizers/ (made by make_models.py there, see its README.md):
a 128,000-piece SentencePiece unigram model trained with DeBERTa-v3's conventions and a 30,522-token uncased
WordPiece vocabulary laid out like bert-base-uncased's. This part writes into `out`:

  vle-checkpoint/     spm.model with the side files a DeBERTa-v3 / VLE hub repository has
  vle/                the tokenizer files the exporter writes into a VLE model folder (its own conversion)
  blip-checkpoint/    vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json, as the BLIP hub repo
  blip/               the tokenizer files the BLIP exporter copies into the model folder
  blip-vocab-only-checkpoint/  vocab.txt alone (a BLIP checkpoint without tokenizer.json)
  blip-vocab-only/    what the BLIP exporter writes from it: vocab.txt copied, tokenizer.json, tokenizer_config.json
                      and special_tokens_map.json built by bert_tokenizer.write_bert_tokenizer (only_missing)
  variants/<name>/checkpoint/, variants/<name>/folder/
                      other SentencePiece settings, each converted by the exporter (VARIANTS: lowercasing; small
                      models trained here without the dummy prefix, keeping extra spaces, with the identity
                      normalizer, without byte fallback, with user-defined pieces, with [MASK] as a piece)
  vle-tokenizer-json-checkpoint/, vle-tokenizer-json/
                      a VLE checkpoint with a tokenizer.json (BLIP's, for its integer-like vocabulary keys) and no
                      spm.model, and the exporter's folder from it (the file re-written as json.load + write_json)
  variants.json       per variant its settings, the reference ids of every question (slow DebertaV2Tokenizer rules)
                      and, for diagnosis, the ids of the converted tokenizer.json under the `tokenizers` library
  cases.json          the questions; per question the text the runtime tokenizes (String.prototype.trim) and the
                      reference ids: VLE `[CLS] … [SEP]` untruncated and truncated to max_question_tokens (as
                      `truncateQuestion` does), BLIP `[CLS] … [SEP]` (the caption prefix before [CLS] -> bos); and,
                      for diagnosis only, the ids of the same tokenizer.json under the Python `tokenizers` library.
The TypeScript converter (src/convert/tokenizer) must write the same files from each checkpoint folder.

transformers 5 has no SentencePiece DebertaV2Tokenizer any more (DebertaV2Tokenizer is the `tokenizers`-backed one,
which drops the spm.model's charsmap; the exporter builds tokenizer.json from the spm.model proto instead), so the
reference is `SlowDebertaV2Tokenizer` below: transformers 5's own SentencePiece backend with the encoding rules of
transformers 4.x's DebertaV2Tokenizer (lowercase when do_lower_case, `sp_model.encode(text, out_type=str)`, piece ->
id through the SentencePiece model, added tokens split off first, `[CLS] … [SEP]`). The BERT reference is
transformers 5's BertTokenizerLegacy, the former slow BertTokenizer, with 4.x's character-by-character lowercasing
in front (slow_bert_tokenizer). The fixtures' README says how both were checked against transformers 4.26.1's and
4.46.3's real slow classes.
"""

import json
import os
import random
import re
import shutil
import time
import unicodedata

SEED = 20250611
# ECMAScript's WhiteSpace and LineTerminator code points: what String.prototype.trim and /\s/u remove.
JS_WHITESPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# What the runtime's question validation (src/question.ts) refuses; no question here contains any of them.
FORBIDDEN = {chr(c) for c in list(range(0x00, 0x09)) + [0x0B, 0x0C] + list(range(0x0E, 0x20)) + list(range(0x7F, 0xA0))}
FORBIDDEN |= {chr(c) for c in list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A))}
MAX_QUESTION_CODE_POINTS = 1000  # DEFAULT_MAX_QUESTION_LENGTH

FIXTURES = os.path.join("test", "fixtures", "upstream", "tokenizers")


def js_trim(text):
    return text.strip(JS_WHITESPACE)


# ----------------------------------------------------------------------------------------------------------------
# Questions


OBJECTS = [
    "man", "woman", "child", "boy", "girl", "dog", "cat", "horse", "cow", "sheep", "elephant", "giraffe", "zebra",
    "bear", "bird", "car", "truck", "bus", "train", "bicycle", "motorcycle", "airplane", "boat", "traffic light",
    "fire hydrant", "stop sign", "bench", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "kite", "baseball bat", "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock",
    "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "fishing pole", "hat", "shirt", "jacket", "shoes",
    "building", "tree", "sky", "water", "road", "sign", "fence", "window", "door", "wall", "floor", "table", "plate",
    "lamp", "mirror", "curtain", "pillow", "blanket", "flag", "statue", "bridge", "mountain", "beach", "wave",
]
PLURALS = {"man": "men", "woman": "women", "child": "children", "sheep": "sheep", "skis": "skis", "bus": "buses",
           "knife": "knives", "glass": "glasses", "shoes": "shoes", "scissors": "scissors", "couch": "couches",
           "sandwich": "sandwiches", "toothbrush": "toothbrushes", "beach": "beaches", "sky": "skies"}
ADJECTIVES = ["red", "blue", "green", "yellow", "white", "black", "brown", "orange", "pink", "purple", "gray",
              "big", "small", "old", "new", "wet", "dry", "empty", "full", "open", "closed", "wooden", "metal",
              "plastic", "striped", "happy", "sleeping", "running", "parked", "broken", "clean", "dirty", "tall"]
PEOPLE = ["man", "woman", "boy", "girl", "person", "child", "player", "chef", "skier", "surfer", "driver", "lady",
          "guy", "kid", "baby", "police officer", "tennis player", "catcher", "batter", "waiter"]
PLACES = ["on the table", "in the sky", "next to the car", "behind the fence", "in the water", "on the wall",
          "under the tree", "in the background", "on the left", "on the right", "in the kitchen", "on the street",
          "at the beach", "in the field", "near the door", "on the plate", "in his hand", "in her hand"]
ACTIVITIES = ["doing", "holding", "eating", "wearing", "looking at", "riding", "playing", "carrying", "throwing",
              "watching", "drinking", "cutting", "reading", "pulling", "sitting on", "standing on"]
TEMPLATES = [
    "What color is the {obj}?", "What colour is the {obj}?", "How many {objs} are there?",
    "How many {objs} are in the picture?", "Is the {obj} {adj}?", "Is there a {obj} {place}?",
    "Are there any {objs} {place}?", "What is the {person} {act}?", "What is in the {person}'s hand?",
    "Where is the {obj}?", "What is {place}?", "Why is the {person} {act} the {obj}?", "Which {obj} is {adj}?",
    "Is this a {adj} {obj}?", "What kind of {obj} is this?", "What is the {obj} made of?",
    "Does the {person} have a {obj}?", "Who is {act} the {obj}?", "What sport is the {person} playing?",
    "What time is it?", "What does the sign say?", "Is it raining?", "What room is this?",
    "What is the weather like?", "How old is the {person}?", "Is the {person} wearing a {obj}?",
    "What brand is the {obj}?", "What is the {person} {act} {place}?", "Are the {objs} {adj}?",
    "Can you see the {obj}?", "Is the {obj} {place}?", "what color are the {objs}", "how many {objs}",
    "is the {obj} {adj}", "What is the number on the {obj}?", "What animal is {place}?",
    "What is the name of the {obj}?", "Has the {person} finished the {obj}?", "Would you eat the {obj}?",
    "Could the {obj} be {adj}?", "Isn't the {obj} {adj}?", "Aren't there {objs} {place}?",
]

# Short questions in other languages and scripts (also part of the tokenizer fixtures' training corpus).
FOREIGN = {
    "fr": ["Qu'est-ce que l'homme tient dans la main ?", "De quelle couleur est la voiture ?",
           "Combien de chiens y a-t-il ?", "Où est le chat ?", "Est-ce que le garçon mange une pomme ?",
           "Le café est-il chaud ?", "Pourquoi la fenêtre est-elle ouverte ?", "À quelle heure part le train ?",
           "Qu'y a-t-il sur l'étagère ?", "Ça va, l'élève ?"],
    "de": ["Was hält der Mann in der Hand?", "Welche Farbe hat das Auto?", "Wie viele Hunde sind auf dem Bild?",
           "Ist die Straße nass?", "Wo ist der Schlüssel?", "Größe und Gewicht des Bären?",
           "Warum läuft das Mädchen?", "Gibt es Äpfel, Öl oder Süßigkeiten?", "Fährt der Zug über die Brücke?",
           "Ist das Wasser heiß?"],
    "es": ["¿Qué tiene el hombre en la mano?", "¿De qué color es el coche?", "¿Cuántos perros hay?",
           "¿Dónde está el niño?", "¿El pingüino está en la nieve?", "¿Qué están comiendo?",
           "¡Qué bonito día! ¿Verdad?", "¿Por qué está mojada la calle?", "¿Hay un árbol junto a la casa?",
           "¿Es azul o verde?"],
    "pt": ["O que o homem está segurando?", "Qual é a cor do ônibus?", "Quantas crianças estão na praia?",
           "Onde está o cão?", "A maçã é vermelha?", "Você vê o pão?", "Há um avião no céu?",
           "Está chovendo em São Paulo?"],
    "it": ["Che cosa tiene in mano l'uomo?", "Di che colore è la macchina?", "Quanti cani ci sono?",
           "Dov'è il gatto?", "È già perché è così?", "C'è una città sullo sfondo?"],
    "pl": ["Co trzyma mężczyzna?", "Jakiego koloru jest samochód?", "Ile jest psów na zdjęciu?", "Gdzie jest łódź?",
           "Czy źrebię śpi?", "Zażółć gęślą jaźń?"],
    "cs": ["Co drží muž v ruce?", "Jakou barvu má auto?", "Kolik je tam psů?",
           "Příliš žluťoučký kůň úpěl ďábelské ódy?"],
    "tr": ["Adam elinde ne tutuyor?", "Araba ne renk?", "Kaç köpek var?", "İstanbul'da mı çekildi?",
           "Kız ağacın altında mı?", "Şu ığdır ılık mı?"],
    "vi": ["Người đàn ông đang cầm gì?", "Chiếc xe màu gì?", "Có bao nhiêu con chó?", "Con mèo ở đâu?",
           "Trời có mưa không?", "Đây là phở hay bún?"],
    "ru": ["Что держит мужчина в руке?", "Какого цвета машина?", "Сколько собак на фото?", "Где кошка?",
           "Идёт ли дождь?", "Это ёлка или сосна?", "Почему улица мокрая?",
           "Съешь же ещё этих мягких французских булок?"],
    "uk": ["Що тримає чоловік?", "Якого кольору автомобіль?", "Скільки тут собак?", "Чи є їжак у траві?",
           "Ґанок із дерева?"],
    "el": ["Τι κρατάει ο άντρας;", "Τι χρώμα είναι το αυτοκίνητο;", "Πόσα σκυλιά υπάρχουν;", "ΠΟΥ ΕΊΝΑΙ Η ΓΆΤΑ;",
           "Είναι ο ουρανός μπλε;"],
    "ar": ["ماذا يحمل الرجل في يده؟", "ما لون السيارة؟", "كم عدد الكلاب؟", "أين القطة؟", "هل السماء زرقاء؟",
           "هل هذا مطبخ أم غرفة نوم؟", "مَا هَذَا؟"],
    "he": ["מה האיש מחזיק ביד?", "מה צבע המכונית?", "כמה כלבים יש בתמונה?", "איפה החתול?", "האם יורד גשם?",
           "שָׁלוֹם, מָה זֶה?"],
    "fa": ["مرد در دستش چه دارد؟", "رنگ ماشین چیست؟", "چند سگ وجود دارد؟"],
    "hi": ["आदमी के हाथ में क्या है?", "कार का रंग क्या है?", "कितने कुत्ते हैं?", "बिल्ली कहाँ है?"],
    "th": ["ผู้ชายถืออะไรอยู่", "รถสีอะไร", "มีสุนัขกี่ตัว", "แมวอยู่ที่ไหน"],
    "zh": ["图片里有什么？", "这个男人手里拿着什么？", "汽车是什么颜色的？", "有几只狗？", "猫在哪里？", "天空是蓝色的吗？", "這是廚房還是臥室？", "桌子上有多少個蘋果？",
           "他们在玩什么运动？", "现在几点了？"],
    "ja": ["この写真には何がありますか？", "男の人は手に何を持っていますか？", "車は何色ですか？", "犬は何匹いますか？", "猫はどこにいますか？", "空は青いですか？",
           "これはラーメンですか、それともうどんですか？", "カタカナとひらがなと漢字"],
    "ko": ["사진에 무엇이 있나요?", "남자가 손에 무엇을 들고 있나요?", "자동차는 무슨 색인가요?", "개가 몇 마리 있나요?", "고양이는 어디에 있나요?", "하늘이 파란가요?"],
}

# Ideographs outside the Basic Multilingual Plane (CJK extensions B-F), as in names and Cantonese; questions only.
ASTRAL_CJK = ["これは𠮷野家の牛丼ですか？", "𩸽を焼いていますか？", "𨋢入面有幾多人？", "佢用刀𠝹緊乜嘢？", "呢個係咪𠵱家嘅樣？",
              "𠀀𠀁𠀂", "Is this 𠮷野家?", "𪚥 or 龘?", "𡈽上有什么？", "這是𤆬嗎？"]

EMOJI = ["🐶", "🐱", "🍕", "🚗", "⚽", "🏀", "🎾", "🌧️", "☀️", "❤️", "👍", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "🇫🇷", "🇯🇵",
         "😀", "🤔", "🙈", "🔥", "✨", "🦒", "🦓", "🐘", "🛹", "🏄‍♀️", "🧑🏿‍🚀", "☕", "🍩", "⏰", "📱", "💻", "🥦", "🍌"]
QUOTES = [("'", "'"), ('"', '"'), ("\u2018", "\u2019"), ("\u201c", "\u201d"), ("\u201e", "\u201c"), ("\u00ab",
          "\u00bb"),
          ("\u2039", "\u203a"), ("`", "`"), ("\u300c", "\u300d"), ("\u300e", "\u300f"), ("\u00bb", "\u00ab")]
APOSTROPHES = ["'", "\u2019", "\u02bc", "\u00b4", "`", "\u2032", "\uff07"]
DASHES = ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "\u00ad", "\ufe63", "\uff0d"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", " \t ", "\u00a0", "\u2003", "\u2009", "\u202f", "\u3000", "\u2028",
          "\u205f", "\u1680"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u034f", "\ufe0f", "\u180e",
             "\u061c", "\u00ad", "\u2061", "\u2062", "\u2063", "\u2064"]
COMPAT = ["ﬁ", "ﬂ", "½", "¼", "²", "³", "™", "…", "①", "⑩", "ｔｅｓｔ", "ＡＢＣ", "１２３", "？", "！", "，", "。", "ｶﾀｶﾅ",
          "㎏", "㎝", "℃", "№", "Ⅻ", "ⅳ", "𝐁𝐨𝐥𝐝", "𝔉𝔯𝔞𝔨𝔱𝔲𝔯", "𝟙𝟚𝟛", "ℌ", "µ", "Å", "Ω", "ǅ", "ſ", "ﬀ", "㈜", "⁵⁰", "₂"]
NUMBERS = ["0", "7", "42", "1,000", "1,234,567", "1.234.567", "1 234 567", "3.14159", "2.5", "-12", "+33", "10:30",
           "12:45:00", "2023-05-17", "17/05/2023", "05.17.23", "$1,000.50", "€9,99", "£5", "¥300", "50%", "1st",
           "2nd", "3rd", "4th", "1990s", "'90s", "0.001", "1e6", "6'2\"", "5'11''", "٣٤٥", "१२३", "１２", "Ⅳ", "10^3",
           "3×4", "7÷2", "±5", "≈3", "#1", "No. 9", "100km/h", "60mph", "98.6°F", "37°C", "1/2", "3/4", "24/7",
           "555-0100", "+1 (555) 010-0199", "v2.0.1", "IPv6", "4K", "1080p", "MP3", "COVID-19", "B-52", "A4"]
PUNCT_RUNS = ["?!", "?!?!", "!!!", "???", "...", "....", "?..", "!?", "--", "---", "—", "((", "))", "[[", "]]",
              "{}", "<>", "@@", "##", "$$", "%%", "^^", "&&", "**", "__", "~~", "||", "\\\\", "//", ";;", "::",
              "¿¿", "¡¡", "。。", "、", "；", "：", "«»", "§", "¶", "†", "•", "·", "‰", "※", "¦", "¬", "©", "®"]
URLS = ["https://example.com/a/b?c=1&d=2#e", "http://www.test.org/path/to/page.html", "www.example.co.uk",
        "ftp://files.example.net/pub/file.tar.gz", "user.name+tag@example.com", "https://例子.测试/路径",
        "https://en.wikipedia.org/wiki/Giraffe_(animal)", "C:\\Users\\me\\photo.jpg", "/home/user/pictures/cat.png",
        "#hashtag", "@username", "example.com:8080/api/v1/items?id=42", "data:image/png;base64,iVBORw0KGgo="]
SPECIAL_LITERALS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[mask]", "[ MASK ]", "<s>", "</s>", "<unk>",
                    "<pad>", "<mask>", "[DEC]", "[ENC]", "▁", "▁▁the", "##ing", "<0x41>"]
LONG_WORDS = ["Pneumonoultramicroscopicsilicovolcanoconiosis", "supercalifragilisticexpialidocious",
              "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz", "antidisestablishmentarianism",
              "Llanfairpwllgwyngyllgogerychwyndrobwllllantysiliogogogoch", "hippopotomonstrosesquippedaliophobia"]
COMBINING = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0303", "\u030c", "\u0323", "\u0331", "\u20dd", "\u0336"]


def _plural(obj):
    if obj in PLURALS:
        return PLURALS[obj]
    last = obj.split()[-1]
    head = obj[: len(obj) - len(last)]
    if last in PLURALS:
        return head + PLURALS[last]
    if last.endswith(("s", "x", "ch", "sh")):
        return obj + "es"
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        return obj[:-1] + "ies"
    return obj + "s"


def template_question(rng):
    obj = rng.choice(OBJECTS)
    return rng.choice(TEMPLATES).format(
        obj=obj, objs=_plural(rng.choice(OBJECTS)), adj=rng.choice(ADJECTIVES), person=rng.choice(PEOPLE),
        place=rng.choice(PLACES), act=rng.choice(ACTIVITIES),
    )


def _recase(rng, text):
    style = rng.randrange(5)
    if style == 0:
        return text.upper()
    if style == 1:
        return text.lower()
    if style == 2:
        return text.title()
    if style == 3:
        return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in text)
    return text.swapcase()


def _insert(rng, text, pieces, count=1):
    for _ in range(count):
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(pieces) + text[at:]
    return text


def _replace_spaces(rng, text, choices):
    return "".join(rng.choice(choices) if ch == " " else ch for ch in text)


def _foreign(rng):
    return rng.choice(FOREIGN[rng.choice(sorted(FOREIGN))])


def _long_question(rng):
    parts = []
    target = rng.randrange(250, 950)
    while sum(len(part) + 1 for part in parts) < target:
        kind = rng.randrange(10)
        if kind < 6:
            parts.append(template_question(rng))
        elif kind == 6:
            parts.append(_foreign(rng))
        elif kind == 7:
            parts.append(rng.choice(NUMBERS))
        elif kind == 8:
            parts.append(rng.choice(EMOJI))
        else:
            parts.append(rng.choice(PUNCT_RUNS))
    text = " ".join(parts)
    return text[: MAX_QUESTION_CODE_POINTS - 10]


def edge_question(rng, kind):
    base = template_question(rng)
    if kind == "accents":
        if rng.random() < 0.5:
            return _foreign(rng)
        return base.replace("the", rng.choice(["thé", "thë", "ţhe", "the\u0301"]), 1)
    if kind == "nfd":
        return unicodedata.normalize("NFD", _foreign(rng))
    if kind == "nfkc":
        return _insert(rng, base, COMPAT, rng.randrange(1, 4))
    if kind == "cjk":
        source = ASTRAL_CJK if rng.random() < 0.2 else FOREIGN[rng.choice(["zh", "ja", "ko"])]
        return rng.choice(source) + ("" if rng.random() < 0.5 else " " + base)
    if kind == "emoji":
        return _insert(rng, base, EMOJI, rng.randrange(1, 4))
    if kind == "rtl":
        text = rng.choice(FOREIGN[rng.choice(["ar", "he", "fa"])])
        return text if rng.random() < 0.5 else base + " " + text
    if kind == "cyrillic_greek":
        return rng.choice(FOREIGN[rng.choice(["ru", "uk", "el"])])
    if kind == "other_scripts":
        return rng.choice(FOREIGN[rng.choice(["hi", "th", "vi", "tr", "pl", "cs"])])
    if kind == "case":
        return _recase(rng, base)
    if kind == "numbers":
        return _insert(rng, base, [" " + n + " " for n in NUMBERS], rng.randrange(1, 4))
    if kind == "punctuation":
        return _insert(rng, base, PUNCT_RUNS, rng.randrange(1, 5))
    if kind == "quotes":
        opening, closing = rng.choice(QUOTES)
        words = base.split(" ")
        index = rng.randrange(len(words))
        words[index] = opening + words[index] + closing
        text = " ".join(words)
        return text.replace("'", rng.choice(APOSTROPHES)) if rng.random() < 0.5 else text
    if kind == "apostrophes":
        opening = rng.choice(["What's", "Who's", "Isn't it", "Don't they", "Can't you see", "Where're", "It's", "Y'all"])
        return opening + rng.choice(APOSTROPHES) + " " + base.replace("'", rng.choice(APOSTROPHES))
    if kind == "hyphens":
        word = rng.choice(["well-known", "state-of-the-art", "t-shirt", "x-ray", "left-handed", "e-mail", "re-enter",
                           "mother-in-law", "twenty-one", "co-op", "self-driving", "high-speed"])
        return base.replace("the", "the " + word.replace("-", rng.choice(DASHES)), 1)
    if kind == "urls":
        return _insert(rng, base, [" " + url + " " for url in URLS])
    if kind == "whitespace":
        text = _replace_spaces(rng, base, SPACES)
        return rng.choice(["", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\ufeff"]) + text + \
            rng.choice(["", " ", "   ", "\t", "\n", "\r\n", "\u00a0", "\u2003"])
    if kind == "invisible":
        return _insert(rng, base, INVISIBLE, rng.randrange(1, 4))
    if kind == "combining":
        return _insert(rng, base, COMBINING, rng.randrange(1, 4))
    if kind == "special_literals":
        return _insert(rng, base, [" " + s + " " for s in SPECIAL_LITERALS] + SPECIAL_LITERALS)
    if kind == "long_words":
        return base.replace("the", "the " + rng.choice(LONG_WORDS + ["a" * 101, "x" * 150, "ab" * 60]), 1)
    if kind == "long":
        return _long_question(rng)
    raise ValueError(kind)


EDGE_KINDS = ["accents", "nfd", "nfkc", "cjk", "emoji", "rtl", "cyrillic_greek", "other_scripts", "case", "numbers",
              "punctuation", "quotes", "apostrophes", "hyphens", "urls", "whitespace", "invisible", "combining",
              "special_literals", "long_words", "long"]


def fixed_questions():
    """Hand-picked cases, each there for one rule."""
    questions = [
        "What is in the man's hand?", "How many people are there?", "What color is the cat?", "Is it sunny?",
        "café", "cafe\u0301", "Ầ Ầ", "A\u0302\u0300 A\u0302\u0300", "e\u0301e\u0301e\u0301", "ﬁsh ﬂags", "Ⅻ ⅷ",
        "a  b", "a\tb", "a\nb", "a\r\nb", "a\u00a0b", "a\u3000b", "a\u200bb", "a\u200db", "a\ufeffb", "\ufeffWhat?",
        "What?\ufeff", "a\u2028b", "a\u2029b", "x" * 100, "x" * 101, "é" * 101,
        "[CLS]", "[SEP]", "[MASK]", "What is [MASK]?", "[MASK][MASK]", "a[SEP]b", "[UNK]", "[PAD]",
        "🐶", "🐶🐱", "👨‍👩‍👧", "🇫🇷🇯🇵", "❤️", "𠀀𠀁", "𝐀", "\U0001F600" * 5, "〰️", "ｈｅｌｌｏ　ｗｏｒｌｄ",
        "???", "!!!", "...", "…", "‽", "¿¡", "a.b.c", "U.S.A.", "e.g.", "i.e.,", "Mr. Smith's dog", "O'Neill",
        "rock 'n' roll", "“Quoted”", "‘single’", "«guillemets»", "„German“", "「日本」", "I'm", "I’m", "Iʼm",
        "1,000", "1.000", "1 000", "1\u202f000", "½", "3½", "x²", "H₂O", "10%", "$5", "€5", "5€", "#1",
        "123456789012345678901234567890", "3.141592653589793238462643383279", "٠١٢٣٤٥٦٧٨٩", "０１２３",
        "https://example.com", "user@example.com", "C++", "C#", "F#", "node.js", "<html>", "a&b", "a|b", "a~b",
        "WHAT COLOR IS THE CAR?", "what color is the car", "WhAt CoLoR", "İstanbul", "ǅemal", "ß", "ẞ", "ﬀ",
        "ΣΊΣΥΦΟΣ", "ὈΔΥΣΣΕΎΣ", "Ǆ", "ı", "ſ", "K", "Å", "Ω", "µ", "ﬆ",
        "مرحبا", "שלום", "Привет", "Γειά", "नमस्ते", "สวัสดี", "你好", "こんにちは", "안녕하세요", "ᄀᄁ", "가",
        "a\u0300\u0301\u0302\u0303\u0304", "\u0301", "x\u20dd", "\u034f", "a\u00adb", "co\u00adop", "a\u2011b",
        "a—b", "a–b", "a−b", "a-b", "well-known", "—", "--", "a\u2060b", "a\u200eb", "a\u200fb", "a\u061cb",
        "Q: what? A: this!", "(a) [b] {c} <d>", "a/b\\c", "a_b", "snake_case_name", "camelCaseName", "PascalCase",
        "ALLCAPS", "a1b2c3", "R2-D2", "C-3PO", "B&W", "AT&T", "Ph.D.", "9/11", "24/7", "1:1", "16:9", "4:3",
    ]
    return questions


def make_questions(seed=SEED, count=2500):
    """Deterministic: the same seed gives the same questions, in the same order. Half template VQA questions,
    half edge cases (every kind about as often), after the hand-picked ones; no duplicates."""
    rng = random.Random(seed)
    questions = []
    seen = set()

    def add(question):
        question = "".join([*question][:MAX_QUESTION_CODE_POINTS])
        if question in seen or js_trim(question) == "":
            return
        if any(ch in FORBIDDEN for ch in question):
            raise AssertionError(f"question {question!r} has a character the runtime refuses")
        seen.add(question)
        questions.append(question)

    for question in fixed_questions():
        add(question)
    index = 0
    while len(questions) < count:
        if index % 2 == 0:
            add(template_question(rng))
        else:
            add(edge_question(rng, EDGE_KINDS[(index // 2) % len(EDGE_KINDS)]))
        index += 1
    return questions


def corpus_lines(seed, count):
    """Generated training lines in English (VQA questions) and the other scripts above, for make_models.py."""
    rng = random.Random(seed)
    words = {lang: sorted({w for q in qs for w in q.split()}) for lang, qs in FOREIGN.items()}
    for index in range(count):
        kind = index % 4
        if kind == 0:
            yield " ".join(template_question(rng) for _ in range(rng.randrange(1, 4)))
        elif kind == 1:
            lang = rng.choice(sorted(FOREIGN))
            if lang in ("zh", "ja", "th"):
                # No spaces between words: recombine whole questions and their halves.
                parts = [rng.choice(FOREIGN[lang]) for _ in range(rng.randrange(1, 4))]
                yield "".join(part[: rng.randrange(1, len(part) + 1)] for part in parts)
            else:
                yield " ".join(rng.choice(words[lang]) for _ in range(rng.randrange(3, 12)))
        elif kind == 2:
            yield _foreign(rng) + " " + template_question(rng)
        else:
            yield template_question(rng).replace("the", rng.choice(EMOJI + NUMBERS + ["the"]), 1)


# ----------------------------------------------------------------------------------------------------------------
# References


def slow_deberta_v2_tokenizer(folder):
    """transformers 4.x's slow DebertaV2Tokenizer rules on transformers 5's SentencePiece backend."""
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    class SlowDebertaV2Tokenizer(SentencePieceBackend):
        vocab_files_names = {"vocab_file": "spm.model"}
        model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

        def __init__(self, vocab_file, do_lower_case=False, **kwargs):
            self.do_lower_case = do_lower_case
            super().__init__(vocab_file=vocab_file, do_lower_case=do_lower_case, legacy=True, **kwargs)

        def _tokenize(self, text, **kwargs):
            if self.do_lower_case:
                text = text.lower()
            return self.sp_model.encode(text, out_type=str)

        def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
            if token_ids_1 is None:
                return [self.cls_token_id] + token_ids_0 + [self.sep_token_id]
            return [self.cls_token_id] + token_ids_0 + [self.sep_token_id] + token_ids_1 + [self.sep_token_id]

    with open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    added = {}
    path = os.path.join(folder, "added_tokens.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            added = json.load(handle)
    tokenizer = SlowDebertaV2Tokenizer(
        os.path.join(folder, "spm.model"), do_lower_case=bool(config.get("do_lower_case", False)),
        bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
        cls_token="[CLS]", mask_token="[MASK]",
    )
    for token, index in added.items():
        if tokenizer.convert_tokens_to_ids(token) != index:
            found = tokenizer.convert_tokens_to_ids(token)
            raise AssertionError(f"{token} has id {found}, added_tokens.json says {index}")
    return tokenizer


def slow_bert_tokenizer(folder):
    """transformers 4.x's slow BertTokenizer: BertTokenizerLegacy (the same class in transformers 5), given the text
    lowercased one character at a time outside the special tokens, as 4.x's PreTrainedTokenizer.tokenize did before
    BasicTokenizer (`re.sub("(specials)|(.+?)", …lower())`). The difference: a word-final capital sigma becomes σ, as
    in 4.x and in BertTokenizerFast (which BLIP's processor uses), not ς as str.lower() of the word gives."""
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    with open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    do_lower_case = config.get("do_lower_case", True)
    tokenizer = BertTokenizerLegacy(
        os.path.join(folder, "vocab.txt"), do_lower_case=do_lower_case,
        tokenize_chinese_chars=config.get("tokenize_chinese_chars", True), strip_accents=config.get("strip_accents"),
    )
    specials = sorted(tokenizer.all_special_tokens, key=len, reverse=True)
    pattern = re.compile("(" + "|".join(re.escape(token) for token in specials) + ")|(.+?)")

    def encode(text, **kwargs):
        if do_lower_case:
            text = pattern.sub(lambda match: match.group(1) or match.group(2).lower(), text)
        return tokenizer(text, **kwargs)

    encode.vocab = tokenizer.vocab
    return encode


# ----------------------------------------------------------------------------------------------------------------
# Folders


def write_vle_checkpoint(folder, fixtures):
    """The tokenizer files of a DeBERTa-v3 based hub repository: spm.model, [MASK] added after the pieces."""
    import sentencepiece

    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(os.path.join(fixtures, "spm.model"), os.path.join(folder, "spm.model"))
    pieces = sentencepiece.SentencePieceProcessor(model_file=os.path.join(folder, "spm.model")).get_piece_size()
    special = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]",
               "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    files = {
        "tokenizer_config.json": dict({"do_lower_case": False, "vocab_type": "spm", "split_by_punct": False,
                                       "tokenizer_class": "DebertaV2Tokenizer", "model_max_length": 512}, **special),
        "special_tokens_map.json": special,
        "added_tokens.json": {"[MASK]": pieces},
    }
    for name, value in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=2)
    return pieces


def write_blip_checkpoint(folder, fixtures):
    """The tokenizer files of Salesforce/blip-image-captioning-base, from the committed vocab.txt."""
    from transformers import BertTokenizerFast

    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(os.path.join(fixtures, "vocab.txt"), os.path.join(folder, "vocab.txt"))
    fast = BertTokenizerFast(vocab=os.path.join(folder, "vocab.txt"), do_lower_case=True)
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as handle:
        handle.write(fast.backend_tokenizer.to_str(pretty=True))
    special = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
               "unk_token": "[UNK]"}
    config = dict(special, do_basic_tokenize=True, do_lower_case=True, model_max_length=512, never_split=None,
                  processor_class="BlipProcessor", strip_accents=None, tokenize_chinese_chars=True,
                  tokenizer_class="BertTokenizer")
    for name, value in {"tokenizer_config.json": config, "special_tokens_map.json": special}.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=2)


def write_blip_vocab_only_checkpoint(folder, fixtures):
    """A BLIP checkpoint that ships vocab.txt and no other tokenizer file."""
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(os.path.join(fixtures, "vocab.txt"), os.path.join(folder, "vocab.txt"))


def write_blip_tokenizer_folder(checkpoint, folder):
    """The tokenizer half of blip.write_folder_files: the checkpoint's tokenizer files copied, and without a
    tokenizer.json one built from vocab.txt (bert_tokenizer.write_bert_tokenizer, only_missing)."""
    from vqa_llm_export import blip as blip_export
    from vqa_llm_export.bert_tokenizer import read_vocab, write_bert_tokenizer

    os.makedirs(folder, exist_ok=True)
    for name in blip_export.TOKENIZER_FILES:
        source = os.path.join(checkpoint, name)
        if os.path.exists(source):
            shutil.copyfile(source, os.path.join(folder, name))
    if not os.path.exists(os.path.join(folder, "tokenizer.json")):
        write_bert_tokenizer(folder, read_vocab(os.path.join(checkpoint, "vocab.txt")), only_missing=True)


# SentencePiece settings other than DeBERTa-v3's, each a branch of the spm.model -> tokenizer.json conversion.
# "spm" None: the committed 128k model; else a small model trained here with these trainer arguments.
VARIANTS = {
    "lowercase": {"spm": None, "do_lower_case": True},
    "no-dummy-prefix": {"spm": {"add_dummy_prefix": False}},
    "keep-extra-whitespace": {"spm": {"remove_extra_whitespaces": False}},
    "identity-normalizer": {"spm": {"normalization_rule_name": "identity"}},
    "no-byte-fallback": {"spm": {"byte_fallback": False}},
    "user-defined-pieces": {"spm": {"user_defined_symbols": ["<img>", "[DEC]", "http", "color", "🐶"]}},
    "mask-piece": {"spm": {"control_symbols": ["[MASK]"]}, "added_tokens": False},
}
VARIANT_PIECES = 3000


def train_variant_spm(prefix, settings, seed):
    """A small DeBERTa-v3-style unigram model ([PAD] [CLS] [SEP] [UNK] first) trained on generated lines."""
    import sentencepiece

    corpus = prefix + ".txt"
    with open(corpus, "w", encoding="utf-8") as handle:
        for line in corpus_lines(seed, 20_000):
            handle.write(line + "\n")
    arguments = dict(
        input=corpus, model_prefix=prefix, model_type="unigram", vocab_size=VARIANT_PIECES,
        pad_id=0, pad_piece="[PAD]", bos_id=1, bos_piece="[CLS]", eos_id=2, eos_piece="[SEP]", unk_id=3,
        unk_piece="[UNK]", byte_fallback=True, normalization_rule_name="nmt_nfkc", character_coverage=0.9995,
        hard_vocab_limit=False, num_threads=1, minloglevel=2,
    )
    arguments.update(settings)
    sentencepiece.SentencePieceTrainer.train(**arguments)
    os.remove(corpus)
    return prefix + ".model"


def write_variant_checkpoint(folder, spm_path, do_lower_case, added_tokens):
    """A DeBERTa-v3-style checkpoint's tokenizer files around spm_path, as write_vle_checkpoint."""
    import sentencepiece

    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(spm_path, os.path.join(folder, "spm.model"))
    pieces = sentencepiece.SentencePieceProcessor(model_file=spm_path).get_piece_size()
    special = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]",
               "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    files = {
        "tokenizer_config.json": dict({"do_lower_case": do_lower_case, "vocab_type": "spm", "split_by_punct": False,
                                       "tokenizer_class": "DebertaV2Tokenizer", "model_max_length": 512}, **special),
        "special_tokens_map.json": special,
    }
    if added_tokens:
        files["added_tokens.json"] = {"[MASK]": pieces}
    for name, value in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=2)


def make_variants(out, fixtures, questions, log):
    import tokenizers as hf_tokenizers

    from vqa_llm_export import vle as vle_export
    from vqa_llm_export.manifest import write_json

    results = {}
    for index, (name, variant) in enumerate(VARIANTS.items()):
        started = time.time()
        root = os.path.join(out, "variants", name)
        os.makedirs(root, exist_ok=True)
        if variant["spm"] is None:
            spm_path = os.path.join(fixtures, "spm.model")
        else:
            spm_path = train_variant_spm(os.path.join(root, "trained"), variant["spm"], seed=SEED + index)
        checkpoint = os.path.join(root, "checkpoint")
        write_variant_checkpoint(checkpoint, spm_path, bool(variant.get("do_lower_case", False)),
                                 variant.get("added_tokens", True))
        if spm_path != os.path.join(fixtures, "spm.model"):
            os.remove(spm_path)
            os.remove(spm_path[: -len(".model")] + ".vocab")
        folder = os.path.join(root, "folder")
        for file_name, value in vle_export.convert_spm_tokenizer(checkpoint).items():
            write_json(os.path.join(folder, file_name), value)
        slow = slow_deberta_v2_tokenizer(checkpoint)
        converted = hf_tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        texts = [js_trim(question) for question in questions]
        results[name] = {
            "settings": dict(variant),
            "vocabSize": len(slow.sp_model),
            "ids": [slow(text)["input_ids"] for text in texts],
            "tokenizerJsonIds": [converted.encode(text).ids for text in texts],
        }
        log(f"variant {name}: converted, {len(texts)} reference ids ({time.time() - started:.1f}s)")
    write_json(os.path.join(out, "variants.json"), results)


def make(out, repo, base=False, log=print):
    del base  # the same fixtures either way
    import tokenizers as hf_tokenizers

    from vqa_llm_export import vle as vle_export
    from vqa_llm_export.manifest import write_json

    started = time.time()
    fixtures = os.path.join(repo, FIXTURES)

    vle_checkpoint = os.path.join(out, "vle-checkpoint")
    pieces = write_vle_checkpoint(vle_checkpoint, fixtures)
    vle_folder = os.path.join(out, "vle")
    for name, value in vle_export.convert_spm_tokenizer(vle_checkpoint).items():
        write_json(os.path.join(vle_folder, name), value)
    log(f"VLE: {pieces} SentencePiece pieces converted by the exporter ({time.time() - started:.1f}s)")

    blip_checkpoint = os.path.join(out, "blip-checkpoint")
    write_blip_checkpoint(blip_checkpoint, fixtures)
    blip_folder = os.path.join(out, "blip")
    write_blip_tokenizer_folder(blip_checkpoint, blip_folder)

    vocab_only_checkpoint = os.path.join(out, "blip-vocab-only-checkpoint")
    write_blip_vocab_only_checkpoint(vocab_only_checkpoint, fixtures)
    vocab_only_folder = os.path.join(out, "blip-vocab-only")
    write_blip_tokenizer_folder(vocab_only_checkpoint, vocab_only_folder)

    vle_slow = slow_deberta_v2_tokenizer(vle_checkpoint)
    bert_slow = slow_bert_tokenizer(blip_checkpoint)
    vle_json = hf_tokenizers.Tokenizer.from_file(os.path.join(vle_folder, "tokenizer.json"))
    blip_json = hf_tokenizers.Tokenizer.from_file(os.path.join(blip_folder, "tokenizer.json"))
    vocab_only_json = hf_tokenizers.Tokenizer.from_file(os.path.join(vocab_only_folder, "tokenizer.json"))
    max_tokens = vle_export.MAX_QUESTION_TOKENS
    log(f"tokenizers loaded ({time.time() - started:.1f}s)")

    questions = make_questions()
    cases = []
    for question in questions:
        text = js_trim(question)
        cases.append({
            "question": question,
            "text": text,
            "vle": vle_slow(text)["input_ids"],
            "vleTruncated": vle_slow(text, truncation=True, max_length=max_tokens)["input_ids"],
            "blip": bert_slow(text)["input_ids"],
            # Diagnosis only: the same tokenizer.json run by the Python tokenizers library.
            "vleTokenizerJson": vle_json.encode(text).ids,
            "blipTokenizerJson": blip_json.encode(text).ids,
            "blipVocabOnlyTokenizerJson": vocab_only_json.encode(text).ids,
        })
    write_json(os.path.join(out, "cases.json"), {
        "seed": SEED,
        "maxQuestionTokens": max_tokens,
        "vleVocabSize": pieces,
        "blipVocabSize": len(bert_slow.vocab),
        "cases": cases,
    })
    log(f"{len(cases)} questions, reference ids written ({time.time() - started:.1f}s)")
    make_variants(out, fixtures, questions, log)

    # A VLE checkpoint with a tokenizer.json and no spm.model: the exporter re-writes it as it is (json.load, then
    # write_json). BLIP's has what a re-writer can lose: integer-like keys ("0", "1", …) in its vocabulary.
    json_only = os.path.join(out, "vle-tokenizer-json-checkpoint")
    os.makedirs(json_only, exist_ok=True)
    shutil.copyfile(os.path.join(blip_checkpoint, "tokenizer.json"), os.path.join(json_only, "tokenizer.json"))
    shutil.copyfile(os.path.join(vle_checkpoint, "tokenizer_config.json"), os.path.join(json_only, "tokenizer_config.json"))
    for name, value in vle_export.convert_spm_tokenizer(json_only).items():
        write_json(os.path.join(out, "vle-tokenizer-json", name), value)
