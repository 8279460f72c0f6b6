//! The long-running threads of a person's activity: games played for
//! weeks, apps opened every few days, subscriptions renewed every month.
//!
//! Owns those stories and the state that links one story of a thread to
//! the next (a later story resumes after the last one's final event, so a
//! game is never played before it was bought and a plan is never renewed
//! before it was taken). Shops and trips, which have no such thread, are in
//! the parent module.

use rand::seq::IndexedRandom;
use rand::Rng;

use context_engine::domain::CustomData;

use super::super::catalog::{AppKind, APPS, GAMES, GAME_STORE, SERVICES};
use super::super::items::{ItemRef, Source};
use super::{Clock, Via, Writer, DAY, HOUR};

/// Where a game, an app or a subscription left off (`age`: seconds before
/// `now` that its next story may start from), so a later story continues it:
/// a game is never played before it was bought.
#[derive(Debug, Clone, Copy)]
pub(super) struct GameState {
    level: u32,
    unlocked: [bool; 3],
    age: i64,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct AppState {
    age: i64,
    level: u32,
    plan_started: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct ServiceState {
    plan: usize,
    paying: bool,
    age: i64,
}

impl Writer<'_> {
    /// Buy or install a game once, then play it over days, levelling up and
    /// unlocking achievements; a later story about the same game continues
    /// where the last one stopped.
    pub(super) fn game(&mut self) {
        let Some(&index) = self.persona.games.choose(self.rng) else {
            return;
        };
        let g = &GAMES[index];
        let item = ItemRef::Game { game: index };
        let about = || CustomData {
            content_name: g.title.to_string(),
            content_category: g.genre.to_string(),
            content_ids: vec![g.id.to_string()],
            ..Default::default()
        };
        let mut state = match self.games.get(&index).copied() {
            Some(state) => state,
            None => {
                let mut clock = self.clock();
                let store_url = format!("https://{}/games/{}", GAME_STORE.2, g.id);
                if g.price > 0.0 {
                    if self.rng.random_bool(0.5) {
                        self.push(Source::Games, "ViewContent", clock.age, item, about(), Via::web(store_url.clone()));
                        let gap = self.minutes(5, 3 * 24 * 60);
                        if clock.step(gap).is_none() {
                            return;
                        }
                    }
                    let (value, currency) = self.money(g.price);
                    let data = CustomData { value, currency, num_items: Some(1), ..about() };
                    self.push(Source::Games, "Purchase", clock.age, item, data, Via::web(store_url));
                } else {
                    self.push(Source::Games, "AppInstall", clock.age, item, about(), Via::app());
                }
                GameState { level: 1, unlocked: [false; 3], age: clock.age }
            }
        };
        let mut clock = Clock { age: state.age };
        for session in 0..self.rng.random_range(2..=12) {
            let gap = if session == 0 { self.minutes(5, 120) } else { self.days(0, 3) + self.minutes(30, 600) };
            if clock.step(gap).is_none() {
                break;
            }
            let mut data = about();
            data.properties.insert("duration_minutes".into(), self.rng.random_range(10..=180).to_string());
            data.properties.insert("level".into(), state.level.to_string());
            self.push(Source::Games, "GamePlayed", clock.age, item, data, Via::app());
            if state.level < g.max_level && self.rng.random_bool(0.35) {
                let gap = self.minutes(5, 90);
                if clock.step(gap).is_none() {
                    break;
                }
                state.level = (state.level + self.rng.random_range(1..=3)).min(g.max_level);
                let mut data = about();
                data.properties.insert("level".into(), state.level.to_string());
                self.push(Source::Games, "LevelAchieved", clock.age, item, data, Via::app());
            }
            let a = self.rng.random_range(0..3);
            if !state.unlocked[a] && self.rng.random_bool(0.15) {
                let gap = self.minutes(1, 30);
                if clock.step(gap).is_none() {
                    break;
                }
                state.unlocked[a] = true;
                let mut data = about();
                data.properties.insert("achievement".into(), g.achievements[a].to_string());
                self.push(Source::Games, "AchievementUnlocked", clock.age, item, data, Via::app());
            }
        }
        // The next story resumes a few days after this one's last event.
        let gap = self.days(1, 12);
        state.age = clock.age - gap;
        self.games.insert(index, state);
    }

    /// Install once, open often, progress (levels, achievements), and maybe
    /// try and keep the paid plan; later stories continue the same thread.
    pub(super) fn app(&mut self, index: usize) {
        let source = Source::App(index);
        let a = &APPS[index];
        let app_item = ItemRef::App { app: index };
        let mut state = match self.apps[index] {
            Some(state) => state,
            None => {
                let clock = self.clock();
                self.push(source, "AppInstall", clock.age, app_item, CustomData::default(), Via::app());
                AppState { age: clock.age, level: 0, plan_started: false }
            }
        };
        let mut clock = Clock { age: state.age };
        let course = (!a.courses.is_empty()).then(|| self.persona.course % a.courses.len());
        for _ in 0..self.rng.random_range(2..=10) {
            let gap = self.days(0, 4) + self.minutes(10, 600);
            if clock.step(gap).is_none() {
                break;
            }
            self.push(source, "AppOpen", clock.age, app_item, CustomData::default(), Via::app());
            match (a.kind, course) {
                (AppKind::Language, Some(c)) if self.rng.random_bool(0.4) => {
                    state.level += 1;
                    let course = &a.courses[c];
                    let mut data = CustomData { content_name: course.name.to_string(), ..Default::default() };
                    data.properties.insert("level".into(), state.level.to_string());
                    let item = ItemRef::Course { app: index, course: c };
                    self.push(source, "LevelAchieved", clock.age, item, data, Via::app());
                }
                _ if self.rng.random_bool(0.12) => {
                    let Some(&achievement) = a.achievements.choose(self.rng) else {
                        continue;
                    };
                    let mut data = CustomData::default();
                    data.properties.insert("achievement".into(), achievement.to_string());
                    self.push(source, "AchievementUnlocked", clock.age, app_item, data, Via::app());
                }
                _ => {}
            }
        }
        if !state.plan_started && self.rng.random_bool(0.35) {
            state.plan_started = true;
            let plan = ItemRef::Plan { source, plan: 0 };
            let data = CustomData { content_name: a.plan.name.to_string(), ..Default::default() };
            let gap = self.minutes(1, 60);
            if clock.step(gap).is_some() {
                self.push(source, "StartTrial", clock.age, plan, data.clone(), Via::app());
                let gap = self.days(7, 14);
                if self.rng.random_bool(0.6) && clock.step(gap).is_some() {
                    let (value, currency) = self.money(a.plan.price);
                    let paid = CustomData { value, currency, ..data };
                    self.push(source, "Subscribe", clock.age, plan, paid, Via::app());
                }
            }
        }
        let gap = self.days(1, 12);
        state.age = clock.age - gap;
        self.apps[index] = Some(state);
    }

    /// Sign up, maybe trial first, then pay monthly for a while; a later
    /// story about the same service continues the same plan.
    pub(super) fn service(&mut self, index: usize) {
        let source = Source::Service(index);
        let s = &SERVICES[index];
        let (mut state, mut clock) = match self.services[index] {
            Some(state) => (state, Clock { age: state.age }),
            None => {
                let plan = self.rng.random_range(0..s.plans.len());
                let clock = self.clock();
                (ServiceState { plan, paying: false, age: clock.age }, clock)
            }
        };
        let plan = &s.plans[state.plan];
        let item = ItemRef::Plan { source, plan: state.plan };
        let action = if self.rng.random_bool(0.8) { "website" } else { "app" };
        let url = if action == "website" { format!("https://{}/plans/{}", s.domain, plan.id) } else { String::new() };
        let about = CustomData { content_name: plan.name.to_string(), ..Default::default() };
        let (value, currency) = self.money(plan.price);
        let paid = CustomData { value, currency, ..about.clone() };
        if self.services[index].is_none() {
            if self.rng.random_bool(0.5) {
                self.register_once(source, clock.age);
                let gap = self.minutes(1, 30);
                if clock.step(gap).is_none() {
                    return;
                }
            }
            if self.rng.random_bool(0.6) {
                self.push(source, "StartTrial", clock.age, item, about, Via { action, url: url.clone() });
                let gap = self.days(7, 14);
                if !self.rng.random_bool(0.7) || clock.step(gap).is_none() {
                    state.age = clock.age;
                    self.services[index] = Some(state);
                    return;
                }
            }
        } else if !state.paying {
            // A lapsed trial converts, or a paid month renews, a while later.
            let gap = self.days(1, 20);
            if clock.step(gap).is_none() {
                return;
            }
        } else {
            let gap = 30 * DAY;
            if clock.step(gap).is_none() {
                return;
            }
        }
        for month in 0..self.rng.random_range(1..=5) {
            if month > 0 {
                let gap = 30 * DAY + self.rng.random_range(0..2 * HOUR);
                if clock.step(gap).is_none() {
                    break;
                }
            }
            self.push(source, "Subscribe", clock.age, item, paid.clone(), Via { action, url: url.clone() });
            state.paying = true;
        }
        state.age = clock.age;
        self.services[index] = Some(state);
    }
}
