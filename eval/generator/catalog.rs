//! The invented world the activity generator draws from: businesses, their
//! item catalogs and categories, games, apps, destinations and subscription
//! plans, with the question phrasings each can be asked about.
//!
//! Owns static data only; it draws nothing at random and builds no events.
//! Every name is made up. Several carry rare brand-like tokens ("Kestrel Ridge
//! 2 GTX", "Vaultbreaker: Ember Tides") and near-twins ("Kestrel Ridge 2
//! Low"), so exact-name questions reward lexical matching, while the
//! paraphrased questions share no content words with the items they target.
//! Changing anything here changes generated data: bump `GENERATOR_VERSION`.

/// A product category of one shop, with the questions a person might ask
/// about it.
pub struct Category {
    pub key: &'static str,
    pub label: &'static str,
    /// Names the category in words close to its items.
    pub ask: &'static str,
    /// Means the same with none of the category's words.
    pub paraphrase: &'static str,
    /// A follow-up about one item; `{}` is the item's name.
    pub followup: &'static str,
    /// What a person types into the shop's search box.
    pub search: &'static str,
    /// Worth packing for a trip.
    pub travel_gear: bool,
}

pub struct Product {
    pub id: &'static str,
    pub name: &'static str,
    /// Index into the shop's categories.
    pub category: usize,
    pub price: f64,
}

pub struct Shop {
    pub source_id: &'static str,
    pub name: &'static str,
    pub domain: &'static str,
    pub categories: &'static [Category],
    pub products: &'static [Product],
    /// Staples are bought again and again (groceries).
    pub staples: bool,
}

const fn cat(
    key: &'static str,
    label: &'static str,
    ask: &'static str,
    paraphrase: &'static str,
    followup: &'static str,
    search: &'static str,
    travel_gear: bool,
) -> Category {
    Category { key, label, ask, paraphrase, followup, search, travel_gear }
}

const fn item(id: &'static str, name: &'static str, category: usize, price: f64) -> Product {
    Product { id, name, category, price }
}

pub static SHOPS: [Shop; 5] = [
    Shop {
        source_id: "voltaire-electronics",
        name: "Voltaire Electronics",
        domain: "voltaire-electronics.example",
        staples: false,
        categories: &[
            cat(
                "running-watch",
                "Running watches",
                "Suggest a good running watch",
                "I want something on my wrist that tracks my pace and heart rate when I jog, what would you recommend?",
                "How long does the battery last on the {}?",
                "gps running watch",
                false,
            ),
            cat(
                "headphones",
                "Headphones",
                "Which noise-cancelling headphones should I get?",
                "I need something to block out the din on my commute, any ideas?",
                "Does the {} cancel noise well on planes?",
                "noise cancelling headphones",
                true,
            ),
            cat(
                "laptop",
                "Laptops",
                "Recommend a laptop for work",
                "My old notebook computer is dying, what should I replace it with?",
                "How much RAM does the {} have?",
                "lightweight laptop 16gb",
                false,
            ),
            cat(
                "camera",
                "Cameras",
                "What camera should I buy for travel photos?",
                "I want to take better pictures on holiday than my phone manages",
                "Does the {} shoot 4K video?",
                "mirrorless camera for travel",
                true,
            ),
            cat(
                "travel-tech",
                "Travel accessories",
                "What travel adapters or power banks do I need?",
                "What gadgets keep my devices charged while abroad?",
                "Will the {} work with European sockets?",
                "universal travel adapter",
                true,
            ),
        ],
        products: &[
            item("orbix-pulse-3", "Orbix Pulse 3 GPS running watch", 0, 249.0),
            item("orbix-pulse-3-pro", "Orbix Pulse 3 Pro Sapphire", 0, 379.0),
            item("taltrek-vantage-r9", "Taltrek Vantage R9", 0, 299.0),
            item("corvane-stride-lite", "Corvane Stride Lite", 0, 149.0),
            item("halcyon-q7", "Halcyon Q7 noise-cancelling headphones", 1, 329.0),
            item("sonderbeat-aero", "Sonderbeat Aero ANC earbuds", 1, 179.0),
            item("murmure-studio-2", "Murmure Studio 2 over-ear headphones", 1, 259.0),
            item("vellum-air-14", "Vellum Air 14 laptop", 2, 1199.0),
            item("ferrox-x13-g5", "Ferrox Workbook X13 Gen 5", 2, 1499.0),
            item("quillion-slate-16", "Quillion Slate 16 Creator", 2, 1899.0),
            item("lumora-z50", "Lumora Z50 mirrorless camera", 3, 899.0),
            item("kairo-snap-4k", "Kairo Snap 4K action camera", 3, 349.0),
            item("pellucid-35-f18", "Pellucid 35mm f/1.8 prime lens", 3, 449.0),
            item("voltbrick-20k", "Voltbrick 20K power bank", 4, 59.0),
            item("globeplug-omni", "Globeplug Omni travel adapter", 4, 29.0),
            item("nomaddock-hub", "Nomaddock USB-C travel hub", 4, 49.0),
        ],
    },
    Shop {
        source_id: "kestrel-pine",
        name: "Kestrel & Pine Outfitters",
        domain: "kestrelpine.example",
        staples: false,
        categories: &[
            cat(
                "hiking-boots",
                "Hiking boots",
                "Which hiking boots would you recommend?",
                "My feet hurt on long mountain trails, what footwear should I look at?",
                "Is the {} waterproof?",
                "waterproof hiking boots",
                true,
            ),
            cat(
                "rain-jacket",
                "Rain jackets",
                "Suggest a good rain jacket",
                "What should I wear to stay dry when it pours outside?",
                "Is the {} breathable enough for hiking?",
                "packable rain jacket",
                true,
            ),
            cat(
                "camping",
                "Camping gear",
                "What tent should I take camping?",
                "I'm planning to sleep under the stars for a weekend, what shelter do I need?",
                "How heavy is the {}?",
                "ultralight tent 2 person",
                true,
            ),
            cat(
                "running-shoes",
                "Running shoes",
                "Recommend some running shoes",
                "I want to get back into jogging, what should I put on my feet?",
                "How many kilometres will the {} last?",
                "cushioned running shoes",
                false,
            ),
            cat(
                "backpack",
                "Backpacks",
                "Which backpack is good for travel?",
                "I need something to carry my stuff on a long journey, any suggestions?",
                "Does the {} fit as airline cabin luggage?",
                "40l travel backpack",
                true,
            ),
            cat(
                "cycling",
                "Cycling gear",
                "What cycling gear should I get?",
                "I've started riding to the office on two wheels, what equipment would help?",
                "Is the {} compatible with my bike?",
                "bike helmet and lights",
                false,
            ),
        ],
        products: &[
            item("kr2-gtx", "Kestrel Ridge 2 GTX hiking boots", 0, 189.0),
            item("kr2-low", "Kestrel Ridge 2 Low hiking shoes", 0, 159.0),
            item("brannoch-scree-pro", "Brannoch Scree Pro boots", 0, 219.0),
            item("tamsin-fell-walker", "Tamsin Fell Walker boots", 0, 139.0),
            item("stormwrack-3l", "Stormwrack 3L shell jacket", 1, 279.0),
            item("drizzlefend-packable", "Drizzlefend Packable rain jacket", 1, 99.0),
            item("glenmire-hydrolite", "Glenmire Hydrolite anorak", 1, 149.0),
            item("tamarack-ul2", "Tamarack UL2 ultralight tent", 2, 399.0),
            item("cinderpeak-m7", "Cinderpeak -7 down sleeping bag", 2, 289.0),
            item("moraine-ember", "Moraine Ember camping stove", 2, 69.0),
            item("zephyrine-tempo-4", "Zephyrine Tempo 4 running shoes", 3, 139.0),
            item("quillfoot-carbon", "Quillfoot Carbon Racer", 3, 229.0),
            item("harrowgate-daily-2", "Harrowgate Daily Trainer 2", 3, 119.0),
            item("ostrander-voyager-40", "Ostrander Voyager 40L backpack", 4, 179.0),
            item("ostrander-daylite-22", "Ostrander Daylite 22L daypack", 4, 89.0),
            item("velocette-aero", "Velocette Aero cycling helmet", 5, 149.0),
            item("spindrift-lights", "Spindrift LED bike light set", 5, 45.0),
        ],
    },
    Shop {
        source_id: "maison-ardent",
        name: "Maison Ardent",
        domain: "maisonardent.example",
        staples: false,
        categories: &[
            cat(
                "knitwear",
                "Knitwear",
                "Suggest a warm wool sweater",
                "I get cold at my desk in winter, what could I wear on top?",
                "How should I wash my {}?",
                "merino sweater",
                false,
            ),
            cat(
                "denim",
                "Jeans",
                "Which jeans fit me best?",
                "I need new trousers made of that blue cotton twill",
                "Does the {} run small?",
                "selvedge jeans",
                false,
            ),
            cat(
                "sneakers",
                "Sneakers",
                "Recommend some white sneakers",
                "I want casual shoes that go with everything",
                "Are the {} true to size?",
                "white leather sneakers",
                false,
            ),
            cat(
                "outerwear",
                "Coats",
                "Which winter coat should I buy?",
                "What keeps me warm outdoors when it snows?",
                "Is the {} warm enough for minus ten degrees?",
                "warm winter parka",
                true,
            ),
            cat(
                "accessories",
                "Accessories",
                "Suggest a nice scarf or hat",
                "Little things to finish an outfit?",
                "What colours does the {} come in?",
                "silk scarf",
                false,
            ),
        ],
        products: &[
            item("ardent-merino-oat", "Ardent Merino crewneck in oat", 0, 119.0),
            item("fjellhaven-cardigan", "Fjellhaven cable-knit cardigan", 0, 149.0),
            item("loomwright-turtleneck", "Loomwright cashmere turtleneck", 0, 229.0),
            item("indigo-atelier-r17", "Indigo Atelier R-17 selvedge jeans", 1, 139.0),
            item("corvo-slim", "Corvo Slim stretch jeans", 1, 89.0),
            item("marechal-straight", "Maréchal straight-leg jeans", 1, 109.0),
            item("auberon-court-low", "Auberon Court Low sneakers", 2, 129.0),
            item("plinth-runner-84", "Plinth Runner 84 sneakers", 2, 99.0),
            item("velina-slipon", "Velina canvas slip-ons", 2, 59.0),
            item("norrland-expedition", "Norrland Expedition parka", 3, 349.0),
            item("wexford-overcoat", "Wexford wool overcoat", 3, 299.0),
            item("ardent-liner", "Ardent quilted liner jacket", 3, 159.0),
            item("saffra-scarf", "Saffra silk scarf", 4, 79.0),
            item("tolliver-beanie", "Tolliver ribbed beanie", 4, 35.0),
            item("quenby-belt", "Quenby leather belt", 4, 55.0),
        ],
    },
    Shop {
        source_id: "greenquill-market",
        name: "Greenquill Market",
        domain: "greenquill.example",
        staples: true,
        categories: &[
            cat(
                "coffee",
                "Coffee",
                "What coffee beans should I order?",
                "I need my morning caffeine fix, which roast should I try?",
                "Is the {} good for espresso?",
                "single origin coffee beans",
                false,
            ),
            cat(
                "pasta",
                "Pasta & sauces",
                "Suggest some gluten-free pasta",
                "I can't eat wheat; what noodles could I cook tonight?",
                "Is the {} gluten free?",
                "gluten free pasta",
                false,
            ),
            cat(
                "snacks",
                "Snacks",
                "What healthy snacks should I buy?",
                "Something to munch on between meetings that isn't junk?",
                "How much sugar is in the {}?",
                "healthy snacks",
                false,
            ),
            cat(
                "dairy-free",
                "Dairy alternatives",
                "Which oat milk is best?",
                "I'm lactose intolerant, what can I pour on my cereal?",
                "Does the {} froth well?",
                "barista oat milk",
                false,
            ),
            cat(
                "produce",
                "Fresh produce",
                "What fruit and vegetables do I usually order?",
                "Remind me of the fresh greens I tend to get",
                "Is the {} organic?",
                "organic vegetables",
                false,
            ),
        ],
        products: &[
            item("halden-yirgacheffe", "Halden Roasters Yirgacheffe beans 500 g", 0, 16.5),
            item("brassmoor-no9", "Brassmoor Espresso No. 9", 0, 14.0),
            item("ondina-decaf", "Cafeteria Ondina decaf", 0, 12.9),
            item("rizzolo-gf-fusilli", "Rizzolo gluten-free fusilli", 1, 3.49),
            item("nonna-velia-pesto", "Nonna Velia basil pesto", 1, 5.99),
            item("terravita-lentil-penne", "Terravita red lentil penne", 1, 3.99),
            item("crunchling-almonds", "Crunchling sea salt almonds", 2, 6.49),
            item("oatwhistle-dark", "Oatwhistle dark chocolate bar", 2, 3.2),
            item("pippin-rye-crackers", "Pippin & Rye seeded crackers", 2, 4.1),
            item("avenly-barista", "Avenly barista oat milk 1 L", 3, 2.49),
            item("avenly-unsweetened", "Avenly unsweetened oat milk", 3, 2.19),
            item("coconaut-yoghurt", "Coconaut coconut yoghurt", 3, 3.79),
            item("orchard-loft-apples", "Orchard Loft heritage apples 1 kg", 4, 4.5),
            item("greenquill-spinach", "Greenquill baby spinach 200 g", 4, 2.3),
            item("sunhollow-tomatoes", "Sunhollow cherry tomatoes", 4, 3.1),
        ],
    },
    Shop {
        source_id: "inkwell-ash",
        name: "Inkwell & Ash Books",
        domain: "inkwellash.example",
        staples: false,
        categories: &[
            cat(
                "scifi",
                "Science fiction",
                "Recommend a science fiction novel",
                "I'd like a story about starships and distant futures",
                "Is {} part of a series?",
                "space opera novels",
                false,
            ),
            cat(
                "mystery",
                "Crime & mystery",
                "Suggest a good mystery novel",
                "I'm in the mood for a whodunit with a detective",
                "Who wrote {}?",
                "cosy crime novel",
                false,
            ),
            cat(
                "cookbook",
                "Cookbooks",
                "Which cookbook should I get?",
                "I want to learn to make dinner from scratch, what should I read?",
                "Does {} have vegetarian recipes?",
                "easy weeknight cookbook",
                false,
            ),
            cat(
                "travel-guide",
                "Travel guides",
                "Which travel guide should I read?",
                "Something to read before visiting a new country?",
                "Is {} up to date?",
                "travel guide book",
                true,
            ),
            cat(
                "popular-science",
                "Popular science",
                "Recommend a popular science book",
                "I want to learn how the universe and the brain work",
                "How long is {}?",
                "popular science bestsellers",
                false,
            ),
        ],
        products: &[
            item("glass-meridian", "The Glass Meridian", 0, 18.99),
            item("ashes-of-perihelion", "Ashes of Perihelion", 0, 16.5),
            item("nine-moons-caddra", "Nine Moons of Caddra", 0, 14.99),
            item("quiet-harrow-fen", "The Quiet at Harrow Fen", 1, 12.99),
            item("malvolen-salt-road", "Inspector Malvolen and the Salt Road", 1, 13.5),
            item("murder-vellichor", "A Murder in Vellichor Street", 1, 11.99),
            item("salt-smoke-citrus", "Salt, Smoke & Citrus", 2, 29.0),
            item("weeknight-hearth", "The Weeknight Hearth", 2, 24.0),
            item("ferment-slowly", "Ferment Slowly", 2, 27.0),
            item("wayfarer-portugal", "Wayfarer Guide: Portugal", 3, 21.0),
            item("wayfarer-japan", "Wayfarer Guide: Japan", 3, 23.0),
            item("wayfarer-iceland", "Wayfarer Guide: Iceland", 3, 22.0),
            item("restless-cortex", "The Restless Cortex", 4, 19.99),
            item("small-gods-physics", "Small Gods of Physics", 4, 17.5),
            item("tidewater-salt", "Tidewater: A History of Salt", 4, 18.0),
        ],
    },
];

/// The game launcher and store every game event comes from.
pub const GAME_STORE: (&str, &str, &str) = ("lanternfall", "Lanternfall Games", "lanternfall.example");

pub struct Game {
    pub id: &'static str,
    pub title: &'static str,
    pub genre: &'static str,
    /// 0 for free-to-play (installed, not bought).
    pub price: f64,
    pub achievements: [&'static str; 3],
    pub max_level: u32,
}

const fn game(
    id: &'static str,
    title: &'static str,
    genre: &'static str,
    price: f64,
    achievements: [&'static str; 3],
    max_level: u32,
) -> Game {
    Game { id, title, genre, price, achievements, max_level }
}

pub static GAMES: [Game; 16] = [
    game(
        "vaultbreaker-et",
        "Vaultbreaker: Ember Tides",
        "Action RPG",
        39.99,
        ["Tidecaller", "Ember Vault Cleared", "Saltglass Duelist"],
        60,
    ),
    game(
        "vaultbreaker-fl",
        "Vaultbreaker: Frost Ledger",
        "Action RPG",
        29.99,
        ["Cold Open", "Ledger Balanced", "Rime Warden"],
        50,
    ),
    game(
        "hollowmere",
        "Hollowmere",
        "Survival horror",
        24.99,
        ["Lantern Keeper", "Out of the Mire", "Quiet Steps"],
        12,
    ),
    game("skyhook-derby", "Skyhook Derby", "Racing", 0.0, ["Photo Finish", "Drift King", "Hundred Laps"], 40),
    game(
        "quillstorm-tactics",
        "Quillstorm Tactics",
        "Strategy",
        34.99,
        ["Flawless Siege", "Paper General", "Ink and Iron"],
        30,
    ),
    game(
        "mosswick-farmstead",
        "Mosswick Farmstead",
        "Farming sim",
        19.99,
        ["Golden Harvest", "Barn Raiser", "Beekeeper"],
        25,
    ),
    game(
        "glimmerline-courier",
        "Glimmerline Courier",
        "Platformer",
        14.99,
        ["No Parcel Lost", "Rooftop Sprinter", "Night Shift"],
        20,
    ),
    game("kragspire-online", "Kragspire Online", "MMO", 0.0, ["Raid Vanguard", "Guild Founder", "Spire Summit"], 80),
    game("tessellate", "Tessellate", "Puzzle", 9.99, ["Perfect Tiling", "Hundred Boards", "Mosaic Mind"], 100),
    game(
        "starward-drift",
        "Starward Drift",
        "Space sim",
        29.99,
        ["First Jump", "Nebula Cartographer", "Dockmaster"],
        35,
    ),
    game("bramblefoot-brawl", "Bramblefoot Brawl", "Fighting", 0.0, ["Combo Artist", "Undefeated", "Thornguard"], 45),
    game("orison-deep", "Orison Deep", "Roguelike", 24.99, ["Depth 50", "No-Hit Descent", "Abyssal Cartographer"], 50),
    game("pocket-armada", "Pocket Armada", "Mobile strategy", 0.0, ["Admiral", "Fleet of Fifty", "Harbour Master"], 70),
    game("cindervale-3", "Cindervale Chronicles III", "RPG", 49.99, ["Dragon's Bane", "Lorekeeper", "Ashen Crown"], 70),
    game(
        "wraithgate-protocol",
        "Wraithgate Protocol",
        "Shooter",
        39.99,
        ["Headline Act", "Last One Standing", "Ghost Signal"],
        55,
    ),
    game(
        "driftglass-isles",
        "Driftglass Isles",
        "Adventure",
        19.99,
        ["Shell Collector", "Map Complete", "Tide Reader"],
        15,
    ),
];

/// What an app is for; decides its story and its progress questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    Fitness,
    Music,
    Language,
}

pub struct Course {
    pub id: &'static str,
    pub name: &'static str,
    pub language: &'static str,
}

pub struct Plan {
    pub id: &'static str,
    pub name: &'static str,
    pub price: f64,
}

pub struct App {
    pub source_id: &'static str,
    pub name: &'static str,
    pub kind: AppKind,
    // Part of the catalog's description of an app; no story reads it yet.
    #[allow(dead_code)]
    pub category: &'static str,
    pub achievements: &'static [&'static str],
    pub courses: &'static [Course],
    pub plan: Plan,
    /// Which subscription question the plan answers besides "all of them".
    pub plan_kind: Option<ServiceKind>,
    /// Progress questions; `{}` is a course's language where the app has
    /// courses.
    pub questions: &'static [&'static str],
}

pub static APPS: [App; 3] = [
    App {
        source_id: "strideloop",
        name: "StrideLoop",
        kind: AppKind::Fitness,
        category: "Fitness",
        achievements: &["First 10K run", "7-day streak", "Personal best 5K", "100 km month"],
        courses: &[],
        plan: Plan { id: "strideloop-premium", name: "StrideLoop Premium", price: 9.99 },
        plan_kind: None,
        questions: &[
            "How have my workouts been going lately?",
            "Am I keeping my exercise routine up?",
            "What running milestones have I hit recently?",
        ],
    },
    App {
        source_id: "tunewell",
        name: "Tunewell",
        kind: AppKind::Music,
        category: "Music streaming",
        achievements: &["1,000 minutes listened", "50 new artists discovered", "Year of vinyl week"],
        courses: &[],
        plan: Plan { id: "tunewell-family", name: "Tunewell Family", price: 16.99 },
        plan_kind: Some(ServiceKind::Streaming),
        questions: &["Which music app have I been using?", "How much have I been listening to songs lately?"],
    },
    App {
        source_id: "parlova",
        name: "Parlova",
        kind: AppKind::Language,
        category: "Language learning",
        achievements: &["30-day streak", "First conversation", "Vocabulary 500"],
        courses: &[
            Course { id: "course-pt", name: "Portuguese for travellers", language: "Portuguese" },
            Course { id: "course-ja", name: "Japanese basics", language: "Japanese" },
            Course { id: "course-it", name: "Italian A2", language: "Italian" },
            Course { id: "course-is", name: "Icelandic starter", language: "Icelandic" },
        ],
        plan: Plan { id: "parlova-plus", name: "Parlova Plus", price: 12.99 },
        plan_kind: None,
        questions: &[
            "How far along am I with my {} lessons?",
            "Am I keeping up with my {} practice?",
            "What level have I reached in {}?",
        ],
    },
];

/// Flights, hotels and tours: (source_id, name, domain).
pub const AIRLINE: (&str, &str, &str) = ("skylark-air", "Skylark Air", "skylarkair.example");
pub const HOTELS: (&str, &str, &str) = ("harborlight", "Harborlight Stays", "harborlight.example");
pub const TOURS: (&str, &str, &str) = ("wanderbound", "Wanderbound Tours", "wanderbound.example");

pub struct City {
    pub name: &'static str,
    pub slug: &'static str,
    /// Names the city without its name, for paraphrased questions.
    pub descriptor: &'static str,
    /// (id, name)
    pub hotels: [(&'static str, &'static str); 2],
    pub tour: (&'static str, &'static str),
}

const fn city(
    name: &'static str,
    slug: &'static str,
    descriptor: &'static str,
    hotels: [(&'static str, &'static str); 2],
    tour: (&'static str, &'static str),
) -> City {
    City { name, slug, descriptor, hotels, tour }
}

pub static CITIES: [City; 14] = [
    city(
        "Lisbon",
        "lisbon",
        "the Portuguese capital",
        [("casa-azulejo", "Casa Azulejo Alfama"), ("tejo-riverside", "Harborlight Tejo Riverside")],
        ("sintra-palaces", "Sintra palaces day trip"),
    ),
    city(
        "Reykjavik",
        "reykjavik",
        "Iceland's capital",
        [("nordurljos", "Hotel Nordurljos"), ("basalt-bay", "Basalt Bay Lodge")],
        ("golden-circle", "Golden Circle and glacier hike"),
    ),
    city(
        "Kyoto",
        "kyoto",
        "Japan's old imperial capital",
        [("ryokan-shirakawa", "Ryokan Shirakawa-an"), ("gion-lantern", "Gion Lantern House")],
        ("fushimi-dawn", "Fushimi Inari dawn walk"),
    ),
    city(
        "Marrakesh",
        "marrakesh",
        "the Red City of Morocco",
        [("riad-zellige", "Riad Zellige Noor"), ("dar-saffran", "Dar Saffran")],
        ("atlas-trek", "Atlas Mountains trek"),
    ),
    city(
        "Oslo",
        "oslo",
        "the Norwegian capital",
        [("fjordlys", "Fjordlys Hotel"), ("bjorvika-inn", "Bjorvika Harbour Inn")],
        ("oslofjord-kayak", "Oslofjord kayak tour"),
    ),
    city(
        "Cape Town",
        "cape-town",
        "the city beneath Table Mountain",
        [("lions-head", "Lion's Head Suites"), ("bo-kaap", "Bo-Kaap Courtyard")],
        ("cape-point", "Cape Point coastal drive"),
    ),
    city(
        "Edinburgh",
        "edinburgh",
        "the Scottish capital",
        [("thistle-slate", "The Thistle & Slate"), ("old-town-wynd", "Old Town Wynd Hotel")],
        ("highlands-whisky", "Highlands whisky day tour"),
    ),
    city(
        "Cusco",
        "cusco",
        "the old Inca capital in Peru",
        [("qori-inti", "Casa Qori Inti"), ("andean-sunstone", "Andean Sunstone Lodge")],
        ("rainbow-mountain", "Rainbow Mountain trek"),
    ),
    city(
        "Hanoi",
        "hanoi",
        "Vietnam's capital",
        [("lotus-lantern", "Lotus Lantern Boutique"), ("hoan-kiem-silk", "Hoan Kiem Silk House")],
        ("halong-cruise", "Ha Long Bay cruise"),
    ),
    city(
        "Vienna",
        "vienna",
        "the Austrian capital",
        [("donaublick", "Hotel Donaublick"), ("ring-residenz", "Ringstrasse Residenz")],
        ("wachau-wine", "Wachau valley wine tour"),
    ),
    city(
        "Tromsø",
        "tromso",
        "the Arctic city in northern Norway",
        [("aurora-kveld", "Aurora Kveld Hotel"), ("polar-nights", "Polar Nights Lodge")],
        ("aurora-chase", "Northern lights chase"),
    ),
    city(
        "Queenstown",
        "queenstown",
        "New Zealand's adventure capital",
        [("remarkables-view", "Remarkables View Lodge"), ("wakatipu-shore", "Wakatipu Shore Hotel")],
        ("milford-sound", "Milford Sound day cruise"),
    ),
    city(
        "Santorini",
        "santorini",
        "the Greek island of whitewashed cliffs",
        [("caldera-blue", "Caldera Blue Suites"), ("oia-windmill", "Oia Windmill Rooms")],
        ("volcano-sail", "Volcano and hot springs sail"),
    ),
    city(
        "Banff",
        "banff",
        "the town in the Canadian Rockies",
        [("elk-spruce", "Elk & Spruce Lodge"), ("bow-falls-inn", "Bow Falls Inn")],
        ("lake-louise-canoe", "Lake Louise canoe morning"),
    ),
];

/// Where people live (flight origins) and what they pay in.
pub static HOMES: [(&str, &str); 10] = [
    ("London", "GBP"),
    ("Berlin", "EUR"),
    ("Amsterdam", "EUR"),
    ("Madrid", "EUR"),
    ("Paris", "EUR"),
    ("New York", "USD"),
    ("Toronto", "CAD"),
    ("Dublin", "EUR"),
    ("Stockholm", "SEK"),
    ("Milan", "EUR"),
];

/// What a subscription service sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Streaming,
    News,
    Software,
}

pub struct Service {
    pub source_id: &'static str,
    pub name: &'static str,
    pub domain: &'static str,
    pub kind: ServiceKind,
    pub plans: &'static [Plan],
}

pub static SERVICES: [Service; 6] = [
    Service {
        source_id: "lumenflix",
        name: "Lumenflix",
        domain: "lumenflix.example",
        kind: ServiceKind::Streaming,
        plans: &[
            Plan { id: "lumenflix-standard", name: "Lumenflix Standard", price: 10.99 },
            Plan { id: "lumenflix-premium-4k", name: "Lumenflix Premium 4K", price: 17.99 },
        ],
    },
    Service {
        source_id: "cinevora",
        name: "Cinevora",
        domain: "cinevora.example",
        kind: ServiceKind::Streaming,
        plans: &[
            Plan { id: "cinevora-classics", name: "Cinevora Classics Pass", price: 6.99 },
            Plan { id: "cinevora-adfree", name: "Cinevora Ad-free", price: 12.99 },
        ],
    },
    Service {
        source_id: "meridian-ledger",
        name: "The Meridian Ledger",
        domain: "meridianledger.example",
        kind: ServiceKind::News,
        plans: &[
            Plan { id: "ledger-digital", name: "Meridian Ledger Digital", price: 14.0 },
            Plan { id: "ledger-weekend", name: "Meridian Weekend Edition", price: 6.0 },
        ],
    },
    Service {
        source_id: "northwind-gazette",
        name: "Northwind Gazette",
        domain: "northwindgazette.example",
        kind: ServiceKind::News,
        plans: &[Plan { id: "gazette-all-access", name: "Gazette All Access", price: 9.0 }],
    },
    Service {
        source_id: "notewise",
        name: "Notewise",
        domain: "notewise.example",
        kind: ServiceKind::Software,
        plans: &[
            Plan { id: "notewise-pro", name: "Notewise Pro", price: 7.99 },
            Plan { id: "notewise-teams", name: "Notewise Teams", price: 12.99 },
        ],
    },
    Service {
        source_id: "cloudvault",
        name: "Cloudvault",
        domain: "cloudvault.example",
        kind: ServiceKind::Software,
        plans: &[Plan { id: "cloudvault-2tb", name: "Cloudvault 2 TB backup", price: 9.99 }],
    },
];

/// Subscription questions: (which services they ask about, phrasings).
/// `None` asks about every plan a person pays for.
pub static SUBSCRIPTION_QUESTIONS: [(Option<ServiceKind>, &[&str]); 4] = [
    (
        Some(ServiceKind::Streaming),
        &["Which streaming services am I paying for?", "Remind me which monthly memberships I have for watching shows"],
    ),
    (Some(ServiceKind::News), &["Which newspapers do I subscribe to?", "Where do I get my daily headlines from?"]),
    (
        Some(ServiceKind::Software),
        &["What software subscriptions do I have?", "Which productivity tools am I paying for?"],
    ),
    (None, &["What subscriptions am I paying for each month?", "What recurring charges do I have?"]),
];
